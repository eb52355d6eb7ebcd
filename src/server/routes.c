/* HTTP handlers: request bodies, routing, JSON responses (docs/http-api.md).
 *
 * MHD calls hy__route_access several times per request: once with the headers (a request
 * context is created), once per chunk of body (appended, bounded by max_body), then once
 * with no data, when the route runs and queues its response. hy__route_completed ends the
 * request: access log line, metrics, cleanup. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "server/server_impl.h"

#define MAX_DET_LIMIT 10000
#define JSON_MAX_DEPTH 16
#define MULTIPART_CHUNK (64 * 1024)

typedef struct hy__req {
    double t0;
    char method[16];
    char *url;
    uint8_t *body; /* (len) request body, NULL when none */
    size_t len, cap;
    int too_large; /* body over max_body: read and dropped, answered 413 */
    int no_memory;
    int code;                       /* response status, 0 until queued */
    char model[HY_SERVER_NAME_MAX]; /* metric label: a served model, or "" */
    char err[512];                  /* error text for the access log */
} hy__req;

typedef enum MHD_Result (*handler_fn)(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                      const char *name);

// --- responses -------------------------------------------------------------------------

/* Queues body (hy__malloc'd, taken) with status code. */
static enum MHD_Result reply(struct MHD_Connection *c, hy__req *r, int code, const char *ctype,
                             char *body, size_t len, const char *retry_after, const char *allow) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, body, hy__free);
    if (!resp) {
        hy__free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    r->code = code;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned int)code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_json_ex(struct MHD_Connection *c, hy__req *r, int code, json_object *o,
                                     const char *retry_after, const char *allow) {
    int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    const char *txt = o ? json_object_to_json_string_ext(o, flags) : NULL;
    char *body = txt ? hy__strdup(txt) : NULL;
    json_object_put(o);
    if (!body) return MHD_NO; /* out of memory: MHD closes the connection */
    return reply(c, r, code, "application/json", body, strlen(body), retry_after, allow);
}

static enum MHD_Result reply_json(struct MHD_Connection *c, hy__req *r, int code, json_object *o) {
    return reply_json_ex(c, r, code, o, NULL, NULL);
}

/* {"error": "...", "code": N}; counted as a rejection, the text goes to the access log. */
static enum MHD_Result reply_error_ex(hy_server *s, struct MHD_Connection *c, hy__req *r, int code,
                                      hy__reject why, const char *retry_after, const char *allow,
                                      const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static enum MHD_Result reply_error_ex(hy_server *s, struct MHD_Connection *c, hy__req *r, int code,
                                      hy__reject why, const char *retry_after, const char *allow,
                                      const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    hy__metrics_reject(&s->metrics, why);
    json_object *o = json_object_new_object();
    if (o) {
        json_object_object_add(o, "error", json_object_new_string(r->err));
        json_object_object_add(o, "code", json_object_new_int(code));
    }
    return reply_json_ex(c, r, code, o, retry_after, allow);
}

#define reply_error(s, c, r, code, why, ...)                                                       \
    reply_error_ex(s, c, r, code, why, NULL, NULL, __VA_ARGS__)

/* The status and reason for a library error from a request's own input vs the server. */
static int input_error(hy_status st) {
    return st == HY_ERR_FORMAT || st == HY_ERR_INVALID_ARG || st == HY_ERR_UNSUPPORTED ||
           st == HY_ERR_MISMATCH || st == HY_ERR_UNSAFE;
}

/* A double that serialises rounded to `decimals` places in its shortest form ("0.89587",
 * "480.0"), matching `hotyolo detect --json`. */
static json_object *json_rounded(double v, int decimals) {
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

static json_object *json_str_or_null(const char *s) {
    return s && *s ? json_object_new_string(s) : NULL;
}

// --- request arguments -----------------------------------------------------------------

/* Query argument as a float in [lo, hi]; 0 ok (left as is when absent), -1 with err. */
static int arg_float(struct MHD_Connection *c, const char *key, double lo, double hi, float *out,
                     char *err, size_t cap) {
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno == ERANGE || !isfinite(d) || d < lo || d > hi) {
        snprintf(err, cap, "%s: '%s' is not a number in [%g, %g]", key, v, lo, hi);
        return -1;
    }
    *out = (float)d;
    return 0;
}

static int arg_int(struct MHD_Connection *c, const char *key, long lo, long hi, int *out, char *err,
                   size_t cap) {
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno == ERANGE || n < lo || n > hi) {
        snprintf(err, cap, "%s: '%s' is not an integer in [%ld, %ld]", key, v, lo, hi);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int served_imgsz(const hy_server *s, int v) {
    for (int i = 0; i < s->p.n_imgsz; i++)
        if (s->p.imgsz[i] == v) return 1;
    return 0;
}

static int max_imgsz(const hy_server *s) {
    int m = 0;
    for (int i = 0; i < s->p.n_imgsz; i++) m = HY_MAX(m, s->p.imgsz[i]);
    return m;
}

/* Entry for a model name; on failure a 404 is queued and NULL returned (*ret set). */
static hy__mentry *find_model(hy_server *s, struct MHD_Connection *c, hy__req *r, const char *name,
                              enum MHD_Result *ret) {
    hy__mentry *e = name && *name ? hy__cache_find(&s->cache, name) : NULL;
    if (!e) {
        *ret = reply_error(s, c, r, MHD_HTTP_NOT_FOUND, HY__REJ_NOT_FOUND, "unknown model '%s'",
                           name ? name : "");
        return NULL;
    }
    snprintf(r->model, sizeof r->model, "%s", e->name);
    return e;
}

/* Model reference for a request; on failure a 503 is queued and NULL returned. */
static hy__mver *acquire_model(hy_server *s, struct MHD_Connection *c, hy__req *r, hy__mentry *e,
                               enum MHD_Result *ret) {
    hy__mver *v = NULL;
    if (hy__cache_acquire(&s->cache, e, &v) != HY_OK) {
        *ret = reply_error_ex(s, c, r, MHD_HTTP_SERVICE_UNAVAILABLE, HY__REJ_UNAVAILABLE, "1", NULL,
                              "%s", hy_last_error());
        return NULL;
    }
    return v;
}

/* Submits j and waits for it. Returns 1 when done (the caller reads and frees j); else the
 * error response is queued (503 queue full, 504 timeout), j is gone and *ret is set. */
static int run_job(hy_server *s, struct MHD_Connection *c, hy__req *r, hy__job *j,
                   enum MHD_Result *ret) {
    if (hy__queue_submit(&s->queue, j) != HY_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", hy_last_error());
        hy__job_free(s, j);
        *ret = reply_error_ex(s, c, r, MHD_HTTP_SERVICE_UNAVAILABLE, HY__REJ_QUEUE_FULL, "1", NULL,
                              "%s", why);
        return 0;
    }
    double deadline = s->p.timeout_ms > 0 ? j->t_queued + s->p.timeout_ms : 0;
    if (!hy__queue_wait(&s->queue, j, deadline)) {
        *ret = reply_error(s, c, r, MHD_HTTP_GATEWAY_TIMEOUT, HY__REJ_TIMEOUT,
                           "inference did not finish within the %d ms request timeout",
                           s->p.timeout_ms);
        return 0;
    }
    return 1;
}

// --- health, page, metrics -------------------------------------------------------------

static enum MHD_Result h_page(hy_server *s, struct MHD_Connection *c, hy__req *r,
                              const char *name) {
    size_t len = 0;
    const char *html = hy__server_page_html(&len);
    char *body = hy__malloc(len + 1);
    if (!body) return MHD_NO;
    memcpy(body, html, len);
    return reply(c, r, MHD_HTTP_OK, "text/html; charset=utf-8", body, len, NULL, NULL);
}

static enum MHD_Result h_live(hy_server *s, struct MHD_Connection *c, hy__req *r,
                              const char *name) {
    json_object *o = json_object_new_object();
    if (o) json_object_object_add(o, "live", json_object_new_boolean(1));
    return reply_json(c, r, MHD_HTTP_OK, o);
}

static enum MHD_Result h_ready(hy_server *s, struct MHD_Connection *c, hy__req *r,
                               const char *name) {
    char reason[512] = "";
    int ready = hy__server_ready(s, reason, sizeof reason);
    json_object *o = json_object_new_object();
    if (o) {
        json_object_object_add(o, "ready", json_object_new_boolean(ready));
        if (!ready) {
            json_object_object_add(o, "error", json_object_new_string(reason));
            json_object_object_add(o, "code", json_object_new_int(MHD_HTTP_SERVICE_UNAVAILABLE));
            snprintf(r->err, sizeof r->err, "not ready: %s", reason);
        }
    }
    return reply_json(c, r, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o);
}

static enum MHD_Result h_metrics(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                 const char *name) {
    size_t len = 0;
    char *text = hy__metrics_render(s, &len);
    if (!text) return MHD_NO;
    return reply(c, r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL,
                 NULL);
}

static enum MHD_Result h_v2_server(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                   const char *name) {
    json_object *o = json_object_new_object();
    json_object *ext = json_object_new_array();
    if (o && ext) {
        json_object_array_add(ext, json_object_new_string("model_repository"));
        json_object_object_add(o, "name", json_object_new_string("hotyolo"));
        json_object_object_add(o, "version", json_object_new_string(hy_version()));
        json_object_object_add(o, "extensions", ext);
        ext = NULL;
    }
    json_object_put(ext);
    return reply_json(c, r, MHD_HTTP_OK, o);
}

// --- model listing ---------------------------------------------------------------------

static json_object *json_unix_or_null(double t) { return t > 0 ? json_rounded(t, 3) : NULL; }

/* One model's state as JSON (cache.mu held). */
static json_object *model_json(hy_server *s, const hy__mentry *e) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "state", json_object_new_string(hy__mstate_name(e->state)));
    json_object_object_add(o, "version", json_str_or_null(e->version));
    json_object_object_add(o, "path", json_object_new_string(e->path));
    json_object_object_add(o, "format", json_str_or_null(e->format));
    json_object_object_add(o, "classes", e->nc ? json_object_new_int(e->nc) : NULL);
    json_object_object_add(o, "pinned", json_object_new_boolean(e->pinned));
    json_object_object_add(o, "memory_bytes",
                           json_object_new_int64(e->cur ? (int64_t)e->memory : 0));
    json_object_object_add(o, "requests", json_object_new_int64((int64_t)e->served));
    json_object_object_add(o, "last_used", json_unix_or_null(e->last_used_unix));
    json_object_object_add(o, "ready_at", json_unix_or_null(e->ready_unix));
    json_object_object_add(o, "load_ms", json_rounded(e->load_ms, 3));
    json_object_object_add(o, "warmup_ms", json_rounded(e->warmup_ms, 3));
    json_object_object_add(o, "first_request_ms",
                           e->first_request_ms >= 0 ? json_rounded(e->first_request_ms, 3) : NULL);
    json_object_object_add(o, "rewarms_idle", json_object_new_int64((int64_t)e->rewarms_idle));
    json_object_object_add(o, "rewarms_periodic",
                           json_object_new_int64((int64_t)e->rewarms_periodic));
    json_object_object_add(o, "reloads", json_object_new_int64((int64_t)e->reloads));
    json_object_object_add(o, "evictions", json_object_new_int64((int64_t)e->evictions));
    json_object_object_add(o, "error", json_str_or_null(e->error));
    return o;
}

static enum MHD_Result h_models(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                const char *name) {
    json_object *o = json_object_new_object();
    json_object *arr = json_object_new_array();
    if (!o || !arr) {
        json_object_put(o);
        json_object_put(arr);
        return MHD_NO;
    }
    pthread_mutex_lock(&s->cache.mu);
    for (hy__mentry *e = s->cache.head; e; e = e->next)
        json_object_array_add(arr, model_json(s, e));
    pthread_mutex_unlock(&s->cache.mu);
    json_object_object_add(o, "models", arr);
    return reply_json(c, r, MHD_HTTP_OK, o);
}

// --- POST /v1/detect -------------------------------------------------------------------

typedef struct multipart {
    uint8_t *data;
    size_t len, cap, max;
    int found, failed;
} multipart;

static enum MHD_Result multipart_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *filename, const char *content_type,
                                       const char *transfer_encoding, const char *data,
                                       uint64_t off, size_t size) {
    multipart *m = cls;
    if (!key || strcmp(key, "image") != 0) return MHD_YES; /* other fields are ignored */
    if (off == 0 && m->found && m->len) return MHD_YES;    /* keep the first "image" field */
    m->found = 1;
    if (size == 0) return MHD_YES;
    if (m->len + size > m->max || m->len + size < m->len) {
        m->failed = 1;
        return MHD_NO;
    }
    if (m->len + size > m->cap) {
        size_t cap = m->cap ? m->cap : 64 * 1024;
        while (cap < m->len + size) cap *= 2;
        uint8_t *p = hy__realloc(m->data, cap);
        if (!p) {
            m->failed = 1;
            return MHD_NO;
        }
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, size);
    m->len += size;
    return MHD_YES;
}

static int is_multipart(struct MHD_Connection *c) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    return ct && !strncasecmp(ct, "multipart/form-data", 19);
}

/* The image bytes of the request (raw body, or the multipart field "image"), taken from r. */
static int take_image(hy_server *s, struct MHD_Connection *c, hy__req *r, uint8_t **data,
                      size_t *len, char *err, size_t cap) {
    if (!is_multipart(c)) {
        *data = r->body;
        *len = r->len;
        r->body = NULL;
        r->len = r->cap = 0;
        return 0;
    }
    multipart m = {.max = s->p.max_body};
    struct MHD_PostProcessor *pp =
        MHD_create_post_processor(c, MULTIPART_CHUNK, multipart_field, &m);
    if (!pp) {
        snprintf(err, cap, "cannot read the multipart/form-data body (is the boundary missing?)");
        return -1;
    }
    enum MHD_Result ok = MHD_post_process(pp, (const char *)r->body, r->len);
    MHD_destroy_post_processor(pp);
    if (ok != MHD_YES || m.failed || !m.found) {
        hy__free(m.data);
        snprintf(err, cap, "%s",
                 m.found || ok != MHD_YES ? "cannot read the multipart/form-data body"
                                          : "the multipart/form-data body has no field 'image'");
        return -1;
    }
    *data = m.data;
    *len = m.len;
    return 0;
}

static int looks_like_image(const uint8_t *p, size_t n) {
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    return (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) ||
           (n >= 8 && !memcmp(p, png, 8));
}

static json_object *detect_json(const hy__mver *v, const hy__job *j) {
    const hy_result *res = j->res;
    json_object *o = json_object_new_object();
    json_object *dets = json_object_new_array();
    json_object *tm = json_object_new_object();
    if (!o || !dets || !tm) {
        json_object_put(o);
        json_object_put(dets);
        json_object_put(tm);
        return NULL;
    }
    json_object_object_add(o, "model", json_object_new_string(v->entry->name));
    json_object_object_add(o, "version", json_object_new_string(v->version));
    json_object_object_add(o, "width", json_object_new_int(hy_result_image_width(res)));
    json_object_object_add(o, "height", json_object_new_int(hy_result_image_height(res)));
    for (size_t i = 0; i < hy_result_count(res); i++) {
        const hy_detection *d = hy_result_get(res, i);
        json_object *jd = json_object_new_object();
        json_object *box = json_object_new_array();
        if (!jd || !box) {
            json_object_put(jd);
            json_object_put(box);
            continue;
        }
        const char *cn = hy_model_class_name(v->model, d->class_id);
        char fallback[32];
        snprintf(fallback, sizeof fallback, "class_%d", d->class_id);
        json_object_object_add(jd, "class_id", json_object_new_int(d->class_id));
        json_object_object_add(jd, "class_name", json_object_new_string(cn ? cn : fallback));
        json_object_object_add(jd, "confidence", json_rounded(d->confidence, 5));
        json_object_array_add(box, json_rounded(d->x1, 2));
        json_object_array_add(box, json_rounded(d->y1, 2));
        json_object_array_add(box, json_rounded(d->x2, 2));
        json_object_array_add(box, json_rounded(d->y2, 2));
        json_object_object_add(jd, "box", box);
        json_object_array_add(dets, jd);
    }
    json_object_object_add(o, "detections", dets);
    hy_timings t = hy_result_timings(res);
    json_object_object_add(tm, "decode", json_rounded(t.decode_ms, 3));
    json_object_object_add(tm, "preprocess", json_rounded(t.preprocess_ms, 3));
    json_object_object_add(tm, "inference", json_rounded(t.inference_ms, 3));
    json_object_object_add(tm, "postprocess", json_rounded(t.postprocess_ms, 3));
    json_object_object_add(tm, "queue", json_rounded(j->t_start - j->t_queued, 3));
    json_object_object_add(tm, "total", json_rounded(j->t_end - j->t_queued, 3));
    json_object_object_add(o, "timings_ms", tm);
    return o;
}

static enum MHD_Result h_detect(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                const char *unused) {
    enum MHD_Result ret = MHD_NO;
    char err[512];
    hy_detect_params dp = hy_detect_default_params();
    int imgsz = s->p.imgsz[0];
    if (arg_float(c, "conf", 0, 1, &dp.conf, err, sizeof err) ||
        arg_float(c, "iou", 0, 1, &dp.iou, err, sizeof err) ||
        arg_int(c, "max_det", 1, MAX_DET_LIMIT, &dp.max_det, err, sizeof err) ||
        arg_int(c, "imgsz", 32, 8192, &imgsz, err, sizeof err))
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
    if (!served_imgsz(s, imgsz)) {
        char list[128] = "";
        for (int i = 0; i < s->p.n_imgsz; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? ", " : "",
                     s->p.imgsz[i]);
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
                           "imgsz: %d is not served (served sizes: %s)", imgsz, list);
    }
    dp.imgsz = imgsz;
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    if (!name) {
        hy__mentry *first = hy__cache_first(&s->cache);
        name = first ? first->name : "";
    }
    hy__mentry *e = find_model(s, c, r, name, &ret);
    if (!e) return ret;

    uint8_t *img = NULL;
    size_t img_len = 0;
    if (take_image(s, c, r, &img, &img_len, err, sizeof err) != 0)
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
    if (img_len == 0 || !looks_like_image(img, img_len)) {
        hy__free(img);
        return reply_error(
            s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
            img_len ? "the body is not a JPEG or PNG image"
                    : "empty body: send a JPEG or PNG image (raw body or multipart field 'image')");
    }
    hy__job *j = NULL;
    if (hy__job_new(HY__JOB_DETECT, &j) != HY_OK) {
        hy__free(img);
        return MHD_NO;
    }
    j->image = img;
    j->image_len = img_len;
    j->dp = dp;
    j->ver = acquire_model(s, c, r, e, &ret);
    if (!j->ver) {
        hy__job_free(s, j);
        return ret;
    }
    if (!run_job(s, c, r, j, &ret)) return ret;
    if (j->st != HY_OK) {
        int bad = input_error(j->st);
        ret = reply_error(s, c, r, bad ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                          bad ? HY__REJ_BAD_REQUEST : HY__REJ_INTERNAL, "%s%s",
                          bad ? "cannot decode the image: " : "", j->err);
    } else {
        ret = reply_json(c, r, MHD_HTTP_OK, detect_json(j->ver, j));
    }
    hy__job_free(s, j);
    return ret;
}

// --- KServe v2: model metadata, readiness, inference -----------------------------------

/* Anchors of a (h, w) input: cells of the stride 8, 16 and 32 grids. */
static size_t anchors(int h, int w) {
    size_t a = 0;
    for (int st = 8; st <= 32; st *= 2) a += (size_t)(h / st) * (size_t)(w / st);
    return a;
}

static json_object *tensor_meta(const char *name, int d1, long d2, long d3) {
    json_object *o = json_object_new_object();
    json_object *shape = json_object_new_array();
    if (!o || !shape) {
        json_object_put(o);
        json_object_put(shape);
        return NULL;
    }
    json_object_array_add(shape, json_object_new_int(1));
    json_object_array_add(shape, json_object_new_int64(d1));
    json_object_array_add(shape, json_object_new_int64(d2));
    if (d3) json_object_array_add(shape, json_object_new_int64(d3));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "datatype", json_object_new_string("FP32"));
    json_object_object_add(o, "shape", shape);
    return o;
}

static enum MHD_Result h_v2_meta(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                 const char *name) {
    enum MHD_Result ret = MHD_NO;
    hy__mentry *e = find_model(s, c, r, name, &ret);
    if (!e) return ret;
    int sz = s->p.imgsz[0];
    json_object *o = json_object_new_object();
    json_object *versions = json_object_new_array();
    json_object *inputs = json_object_new_array();
    json_object *outputs = json_object_new_array();
    if (!o || !versions || !inputs || !outputs) {
        json_object_put(o);
        json_object_put(versions);
        json_object_put(inputs);
        json_object_put(outputs);
        return MHD_NO;
    }
    pthread_mutex_lock(&s->cache.mu);
    if (e->version[0]) json_object_array_add(versions, json_object_new_string(e->version));
    int nc = e->nc;
    pthread_mutex_unlock(&s->cache.mu);
    json_object_array_add(inputs, tensor_meta("images", 3, sz, sz));
    /* (1, 4 + nc, A); nc is -1 (unknown) until the model has been loaded once */
    json_object_array_add(outputs,
                          tensor_meta("output0", nc ? 4 + nc : -1, (long)anchors(sz, sz), 0));
    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "versions", versions);
    json_object_object_add(o, "platform", json_object_new_string("hotyolo"));
    json_object_object_add(o, "inputs", inputs);
    json_object_object_add(o, "outputs", outputs);
    return reply_json(c, r, MHD_HTTP_OK, o);
}

static enum MHD_Result h_v2_model_ready(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                        const char *name) {
    enum MHD_Result ret = MHD_NO;
    hy__mentry *e = find_model(s, c, r, name, &ret);
    if (!e) return ret;
    pthread_mutex_lock(&s->cache.mu);
    int ready = e->state == HY__M_READY;
    const char *state = hy__mstate_name(e->state);
    pthread_mutex_unlock(&s->cache.mu);
    json_object *o = json_object_new_object();
    if (o) {
        json_object_object_add(o, "name", json_object_new_string(e->name));
        json_object_object_add(o, "ready", json_object_new_boolean(ready));
        json_object_object_add(o, "state", json_object_new_string(state));
    }
    return reply_json(c, r, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o);
}

static json_object *parse_json_body(const hy__req *r, char *err, size_t cap) {
    if (!r->body || !r->len) {
        snprintf(err, cap, "empty body: a JSON object is required");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    if (!tok) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    json_object *o =
        json_tokener_parse_ex(tok, (const char *)r->body, (int)HY_MIN(r->len, (size_t)INT32_MAX));
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o || je != json_tokener_success) {
        json_object_put(o);
        snprintf(err, cap, "the body is not valid JSON: %s",
                 je == json_tokener_continue ? "unexpected end of text"
                                             : json_tokener_error_desc(je));
        return NULL;
    }
    for (size_t i = used; i < r->len; i++)
        if (r->body[i] != ' ' && r->body[i] != '\n' && r->body[i] != '\r' && r->body[i] != '\t') {
            json_object_put(o);
            snprintf(err, cap, "the body is not valid JSON: extra text after the object");
            return NULL;
        }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        snprintf(err, cap, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

static json_object *member(json_object *o, const char *key) {
    json_object *v = NULL;
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v)
               ? v
               : NULL;
}

/* Flattens (possibly nested) number arrays into x[*n..cap); -1 on a non-number or too many. */
static int flatten(json_object *a, float *x, size_t cap, size_t *n, int depth) {
    if (depth > JSON_MAX_DEPTH) return -1;
    size_t len = json_object_array_length(a);
    for (size_t i = 0; i < len; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (json_object_is_type(v, json_type_array)) {
            if (flatten(v, x, cap, n, depth + 1) != 0) return -1;
            continue;
        }
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
            return -1;
        double d = json_object_get_double(v);
        if (*n >= cap || !isfinite(d)) return -1;
        x[(*n)++] = (float)d;
    }
    return 0;
}

/* Validates a v2 request against the "images" input (1, 3, H, W) FP32 and reads its data
 * into *x_out (hy__malloc'd). 0 ok, -1 with err. */
static int read_v2_input(hy_server *s, json_object *req, float **x_out, int *h_out, int *w_out,
                         char *err, size_t cap) {
    json_object *inputs = member(req, "inputs");
    if (!inputs || !json_object_is_type(inputs, json_type_array) ||
        json_object_array_length(inputs) != 1) {
        snprintf(err, cap, "inputs: an array with one tensor (\"images\") is required");
        return -1;
    }
    json_object *in = json_object_array_get_idx(inputs, 0);
    json_object *jname = member(in, "name"), *jtype = member(in, "datatype"),
                *jshape = member(in, "shape"), *jdata = member(in, "data");
    if (!jname || strcmp(json_object_get_string(jname), "images") != 0) {
        snprintf(err, cap, "inputs[0].name: '%s' is not an input of the model (expected 'images')",
                 jname ? json_object_get_string(jname) : "");
        return -1;
    }
    if (!jtype || strcmp(json_object_get_string(jtype), "FP32") != 0) {
        snprintf(err, cap, "inputs[0].datatype: '%s' is not supported (expected 'FP32')",
                 jtype ? json_object_get_string(jtype) : "");
        return -1;
    }
    long dims[4] = {0};
    int ok = jshape && json_object_is_type(jshape, json_type_array) &&
             json_object_array_length(jshape) == 4;
    for (int i = 0; ok && i < 4; i++) {
        json_object *d = json_object_array_get_idx(jshape, (size_t)i);
        ok = json_object_is_type(d, json_type_int);
        if (ok) dims[i] = (long)json_object_get_int64(d);
    }
    int mx = max_imgsz(s);
    if (!ok || dims[0] != 1 || dims[1] != 3 || dims[2] < 32 || dims[3] < 32 || dims[2] % 32 ||
        dims[3] % 32 || dims[2] > mx || dims[3] > mx) {
        snprintf(
            err, cap,
            "inputs[0].shape: expected [1, 3, H, W] with H and W multiples of 32 in [32, %d]%s", mx,
            ok ? "" : " (four integers)");
        if (ok)
            snprintf(err + strlen(err), cap - strlen(err), ", got [%ld, %ld, %ld, %ld]", dims[0],
                     dims[1], dims[2], dims[3]);
        return -1;
    }
    size_t n = (size_t)3 * (size_t)dims[2] * (size_t)dims[3];
    if (!jdata || !json_object_is_type(jdata, json_type_array)) {
        snprintf(err, cap, "inputs[0].data: an array of %zu numbers is required", n);
        return -1;
    }
    float *x = hy__malloc(n * sizeof *x);
    if (!x) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    size_t got = 0;
    if (flatten(jdata, x, n, &got, 0) != 0 || got != n) {
        hy__free(x);
        snprintf(err, cap,
                 "inputs[0].data: expected %zu finite numbers for shape [1, 3, %ld, %ld]%s", n,
                 dims[2], dims[3], got < n ? "" : " (got more, or a non-number)");
        return -1;
    }
    *x_out = x;
    *h_out = (int)dims[2];
    *w_out = (int)dims[3];
    return 0;
}

static char *v2_output(const hy__mver *v, json_object *req, const hy__job *j, size_t rows, size_t a,
                       size_t *len) {
    hy__sbuf b = {0};
    hy__sbuf_put(&b, "{\"model_name\":", 14);
    json_object *js = json_object_new_string(v->entry->name);
    hy__sbuf_printf(&b, "%s,\"model_version\":\"%s\"", js ? json_object_to_json_string(js) : "\"\"",
                    v->version);
    json_object_put(js);
    json_object *id = member(req, "id");
    if (id && json_object_is_type(id, json_type_string))
        hy__sbuf_printf(&b, ",\"id\":%s",
                        json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
    hy__sbuf_printf(&b,
                    ",\"outputs\":[{\"name\":\"output0\",\"datatype\":\"FP32\",\"shape\":[1,%zu,%"
                    "zu],\"data\":[",
                    rows, a);
    for (size_t i = 0; i < j->out_len && !b.failed; i++) {
        float f = j->out[i];
        if (isfinite(f))
            hy__sbuf_printf(&b, i ? ",%.9g" : "%.9g", (double)f);
        else
            hy__sbuf_put(&b, i ? ",null" : "null", i ? 5 : 4);
    }
    hy__sbuf_put(&b, "]}]}", 4);
    return hy__sbuf_take(&b, len);
}

static enum MHD_Result h_v2_infer(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                  const char *name) {
    enum MHD_Result ret = MHD_NO;
    char err[512];
    hy__mentry *e = find_model(s, c, r, name, &ret);
    if (!e) return ret;
    json_object *req = parse_json_body(r, err, sizeof err);
    if (!req) return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
    float *x = NULL;
    int h = 0, w = 0;
    if (read_v2_input(s, req, &x, &h, &w, err, sizeof err) != 0) {
        json_object_put(req);
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
    }
    hy__job *j = NULL;
    if (hy__job_new(HY__JOB_FORWARD, &j) != HY_OK) {
        hy__free(x);
        json_object_put(req);
        return MHD_NO;
    }
    j->x = x;
    j->h = h;
    j->w = w;
    j->ver = acquire_model(s, c, r, e, &ret);
    if (!j->ver) {
        hy__job_free(s, j);
        json_object_put(req);
        return ret;
    }
    size_t rows = 4 + (size_t)hy_model_num_classes(j->ver->model), a = anchors(h, w);
    j->out_len = rows * a;
    j->out = hy__malloc(j->out_len * sizeof *j->out);
    if (!j->out) {
        hy__job_free(s, j);
        json_object_put(req);
        return MHD_NO;
    }
    if (!run_job(s, c, r, j, &ret)) {
        json_object_put(req);
        return ret;
    }
    if (j->st != HY_OK) {
        int bad = input_error(j->st);
        ret = reply_error(s, c, r, bad ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                          bad ? HY__REJ_BAD_REQUEST : HY__REJ_INTERNAL, "%s", j->err);
    } else {
        size_t len = 0;
        char *body = v2_output(j->ver, req, j, rows, a, &len);
        ret = body ? reply(c, r, MHD_HTTP_OK, "application/json", body, len, NULL, NULL) : MHD_NO;
    }
    hy__job_free(s, j);
    json_object_put(req);
    return ret;
}

// --- KServe v2: repository -------------------------------------------------------------

static enum MHD_Result h_repo_index(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                    const char *name) {
    char err[256];
    int only_ready = 0;
    if (r->len) { /* optional {"ready": true} */
        json_object *req = parse_json_body(r, err, sizeof err);
        if (!req) return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
        json_object *jr = member(req, "ready");
        only_ready = jr && json_object_get_boolean(jr);
        json_object_put(req);
    }
    json_object *arr = json_object_new_array();
    if (!arr) return MHD_NO;
    pthread_mutex_lock(&s->cache.mu);
    for (hy__mentry *e = s->cache.head; e; e = e->next) {
        if (only_ready && e->state != HY__M_READY) continue;
        json_object *o = json_object_new_object();
        if (!o) continue;
        char state[16];
        snprintf(state, sizeof state, "%s", hy__mstate_name(e->state));
        for (char *p = state; *p; p++) *p = (char)(*p - (*p >= 'a' && *p <= 'z' ? 32 : 0));
        json_object_object_add(o, "name", json_object_new_string(e->name));
        json_object_object_add(o, "version", json_str_or_null(e->version));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "reason", json_object_new_string(e->error ? e->error : ""));
        json_object_array_add(arr, o);
    }
    pthread_mutex_unlock(&s->cache.mu);
    return reply_json(c, r, MHD_HTTP_OK, arr);
}

static enum MHD_Result h_repo_load(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                   const char *name) {
    char err[512];
    const char *path = NULL;
    json_object *req = NULL;
    if (!hy__server_valid_name(name))
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
                           "model name '%s': use 1 to %d letters, digits, '.', '_' or '-'", name,
                           HY_SERVER_NAME_MAX - 1);
    if (r->len) {
        req = parse_json_body(r, err, sizeof err);
        if (!req) return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
        json_object *jp = member(member(req, "parameters"), "path");
        if (jp && !json_object_is_type(jp, json_type_string)) {
            json_object_put(req);
            return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
                               "parameters.path: a string is required");
        }
        path = jp ? json_object_get_string(jp) : NULL;
    }
    struct stat st;
    if (path && (stat(path, &st) != 0 || !S_ISREG(st.st_mode))) {
        enum MHD_Result ret = reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
                                          "parameters.path: '%s' is not a readable file", path);
        json_object_put(req);
        return ret;
    }
    hy__mentry *e = hy__cache_find(&s->cache, name);
    if (!e && !path) {
        json_object_put(req);
        return reply_error(s, c, r, MHD_HTTP_NOT_FOUND, HY__REJ_NOT_FOUND,
                           "unknown model '%s' (give {\"parameters\": {\"path\": ...}} to add it)",
                           name);
    }
    if (!e && hy__cache_add(&s->cache, name, path, 0, &e) != HY_OK)
        e = hy__cache_find(&s->cache, name); /* added meanwhile by another request */
    if (!e) {
        json_object_put(req);
        return MHD_NO;
    }
    snprintf(r->model, sizeof r->model, "%s", e->name);
    hy_status lst = hy__cache_load(&s->cache, e, path);
    json_object_put(req);
    if (lst != HY_OK) {
        /* a file that does not load is the caller's input; anything else is ours */
        int bad = input_error(lst) || lst == HY_ERR_IO || lst == HY_ERR_NOT_FOUND;
        return reply_error(s, c, r, bad ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                           bad ? HY__REJ_BAD_REQUEST : HY__REJ_INTERNAL,
                           "cannot load model '%s': %s", name, hy_last_error());
    }
    json_object *o = json_object_new_object();
    if (o) {
        pthread_mutex_lock(&s->cache.mu);
        json_object_object_add(o, "name", json_object_new_string(e->name));
        json_object_object_add(o, "version", json_str_or_null(e->version));
        json_object_object_add(o, "state", json_object_new_string(hy__mstate_name(e->state)));
        json_object_object_add(o, "path", json_object_new_string(e->path));
        pthread_mutex_unlock(&s->cache.mu);
    }
    return reply_json(c, r, MHD_HTTP_OK, o);
}

static enum MHD_Result h_repo_unload(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                     const char *name) {
    enum MHD_Result ret = MHD_NO;
    hy__mentry *e = find_model(s, c, r, name, &ret);
    if (!e) return ret;
    hy__cache_unload(&s->cache, e);
    json_object *o = json_object_new_object();
    if (o) {
        json_object_object_add(o, "name", json_object_new_string(e->name));
        json_object_object_add(o, "state", json_object_new_string("unloaded"));
    }
    return reply_json(c, r, MHD_HTTP_OK, o);
}

// --- routing ---------------------------------------------------------------------------

typedef struct route {
    const char *method, *pattern; /* "{m}" matches one path segment: the model name */
    handler_fn fn;
} route;

static const route routes[] = {
    {"GET", "/", h_page},
    {"GET", "/health/live", h_live},
    {"GET", "/health/ready", h_ready},
    {"GET", "/metrics", h_metrics},
    {"GET", "/v1/models", h_models},
    {"POST", "/v1/detect", h_detect},
    {"GET", "/v2", h_v2_server},
    {"GET", "/v2/health/live", h_live},
    {"GET", "/v2/health/ready", h_ready},
    {"GET", "/v2/models/{m}", h_v2_meta},
    {"GET", "/v2/models/{m}/ready", h_v2_model_ready},
    {"POST", "/v2/models/{m}/infer", h_v2_infer},
    {"POST", "/v2/repository/index", h_repo_index},
    {"POST", "/v2/repository/models/{m}/load", h_repo_load},
    {"POST", "/v2/repository/models/{m}/unload", h_repo_unload},
};

static int match(const char *pattern, const char *url, char *name, size_t cap) {
    const char *ph = strstr(pattern, "{m}");
    name[0] = '\0';
    if (!ph) return strcmp(pattern, url) == 0;
    size_t pre = (size_t)(ph - pattern);
    if (strncmp(url, pattern, pre) != 0) return 0;
    const char *seg = url + pre;
    const char *slash = strchr(seg, '/');
    size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
    if (n == 0 || strcmp(seg + n, ph + 3) != 0) return 0;
    if (n >= cap) n = cap - 1; /* too long for a model name: looked up, not found */
    memcpy(name, seg, n);
    name[n] = '\0';
    return 1;
}

static enum MHD_Result dispatch(hy_server *s, struct MHD_Connection *c, hy__req *r, const char *url,
                                const char *method) {
    char name[HY_SERVER_NAME_MAX + 1];
    char allow[64] = "";
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    for (size_t i = 0; i < HY_ARRAY_LEN(routes); i++) {
        const route *rt = &routes[i];
        if (!match(rt->pattern, url, name, sizeof name)) continue;
        if (!strcmp(method, rt->method) || (is_get && !strcmp(rt->method, "GET")))
            return rt->fn(s, c, r, name);
        if (!strstr(allow, rt->method))
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", rt->method);
    }
    if (allow[0])
        return reply_error_ex(s, c, r, MHD_HTTP_METHOD_NOT_ALLOWED, HY__REJ_METHOD, NULL, allow,
                              "method %s is not allowed on %s (allowed: %s)", method, url, allow);
    return reply_error(s, c, r, MHD_HTTP_NOT_FOUND, HY__REJ_NOT_FOUND, "no route %s %s", method,
                       url);
}

// --- MHD callbacks ---------------------------------------------------------------------

static int append_body(hy__req *r, const char *data, size_t n, size_t max) {
    if (r->len + n > max || r->len + n < r->len) return -1;
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 16 * 1024;
        while (cap < r->len + n) cap = cap > max / 2 ? max : cap * 2;
        uint8_t *p = hy__realloc(r->body, cap);
        if (!p) {
            r->no_memory = 1;
            return -1;
        }
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 0;
}

enum MHD_Result hy__route_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls) {
    hy_server *s = cls;
    hy__req *r = *req_cls;
    if (!r) { /* headers received */
        r = hy__calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->t0 = hy__now_ms();
        snprintf(r->method, sizeof r->method, "%s", method);
        r->url = hy__strdup(url);
        *req_cls = r;
        atomic_fetch_add(&s->in_flight, 1);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
        if (n > s->p.max_body) {
            r->too_large = 1;
            /* A client waiting for "100 Continue" gets the 413 before it sends the body. */
            const char *expect =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            if (expect && !strcasecmp(expect, "100-continue"))
                return reply_error(s, conn, r, MHD_HTTP_CONTENT_TOO_LARGE, HY__REJ_BODY_TOO_LARGE,
                                   "request body of %llu bytes is over the %zu byte limit", n,
                                   s->p.max_body);
        }
        return MHD_YES;
    }
    if (*upload_data_size) { /* a chunk of body */
        if (!r->too_large && append_body(r, upload_data, *upload_data_size, s->p.max_body) != 0) {
            r->too_large = !r->no_memory;
            hy__free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
        }
        *upload_data_size = 0; /* consumed (or dropped) */
        return MHD_YES;
    }
    if (r->code) return MHD_YES; /* already answered */
    if (r->no_memory)
        return reply_error(s, conn, r, MHD_HTTP_INTERNAL_SERVER_ERROR, HY__REJ_INTERNAL,
                           "out of memory");
    if (r->too_large)
        return reply_error(s, conn, r, MHD_HTTP_CONTENT_TOO_LARGE, HY__REJ_BODY_TOO_LARGE,
                           "request body is over the %zu byte limit", s->p.max_body);
    return dispatch(s, conn, r, url, method);
}

void hy__route_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    hy_server *s = cls;
    hy__req *r = *req_cls;
    if (!r) return;
    double ms = hy__now_ms() - r->t0;
    if (r->code) hy__metrics_request(&s->metrics, r->model, r->code, ms / 1e3);
    hy_log_level lvl = r->code >= 500 || !r->code ? HY_LOG_ERROR
                       : r->code >= 400           ? HY_LOG_WARN
                                                  : HY_LOG_INFO;
    const char *aborted =
        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)";
    if (r->err[0])
        hy__server_log(s, lvl, "%s %s %d %.1f ms%s: %s", r->method, r->url ? r->url : "?", r->code,
                       ms, aborted, r->err);
    else
        hy__server_log(s, lvl, "%s %s %d %.1f ms%s", r->method, r->url ? r->url : "?", r->code, ms,
                       aborted);
    atomic_fetch_sub(&s->in_flight, 1);
    hy__free(r->body);
    hy__free(r->url);
    hy__free(r);
    *req_cls = NULL;
}
