/* HTTP handlers: request bodies, routing, JSON responses (docs/http-api.md).
 *
 * MHD calls hy__route_access several times per request: once with the headers (a request
 * context is created), once per chunk of body (appended, bounded by max_body), then once
 * with no data, when the route runs and queues its response. hy__route_completed ends the
 * request: access log line, metrics, cleanup. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "model/result_json.h"
#include "server/server_impl.h"

#define MAX_DET_LIMIT 10000
#define MULTIPART_CHUNK (64 * 1024)

typedef struct hy__req {
    double t0;
    char method[16];
    char *url;
    uint8_t *body; /* (len) request body, NULL when none */
    size_t len, cap;
    size_t limit;  /* body limit of the route (bytes) */
    int too_large; /* body over the limit: read and dropped, answered 413 */
    hy__mentry *ent;  /* the model the request is about, referenced; NULL */
    const char *www_auth; /* WWW-Authenticate header of a 401 */
    const char *cors_origin; /* an allowed Origin the response names (MHD's copy), or NULL */
    const char *cors_methods; /* preflight: the methods of the route, or NULL */
    int no_memory;
    size_t budget;    /* bytes held of s->body_bytes (--max-inflight-bytes) */
    int over_budget;  /* the budget was exhausted: body dropped, answered 503 */
    int code;                       /* response status, 0 until queued */
    char model[HY_SERVER_NAME_MAX]; /* metric label: a served model, or "" */
    char err[512];                  /* error text for the access log */
    char infer_header_len[24]; /* Inference-Header-Content-Length of a binary response, or "" */
    int want_version;          /* /v2/models/{m}/versions/{v}/...: only version v will do */
    char version[HY_SERVER_VERSION_LEN + 2]; /* that v (longer: cut, and then matches none) */
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
    if (r->infer_header_len[0])
        MHD_add_response_header(resp, "Inference-Header-Content-Length", r->infer_header_len);
    if (r->www_auth) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_auth);
    if (r->cors_origin) { /* an Origin that passed the --allow-origin check */
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    if (r->cors_methods) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->cors_methods);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Content-Type, Authorization");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
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
/* v rounded to `decimals` places, serialised in its shortest form (as the detect record). */
static json_object *json_rounded(double v, int decimals) { return hy__json_rounded(v, decimals); }

static json_object *json_str_or_null(const char *s) {
    return s && *s ? json_object_new_string(s) : NULL;
}

// --- request validation: pure functions (server_impl.h; fuzzed without a socket) --------

#define JSON_NUMBER_MAX 64   /* characters of one JSON number */
#define V2_EXTRA_VALUES 256  /* values of an infer body besides its data: keys, shape, id */
#define V2_MAX_DEPTH 10      /* root, inputs, input, data nested [1][3][H][W], + slack */
#define ADMIN_MAX_VALUES 64  /* {"parameters": {"path": ...}} needs 3 */
#define ADMIN_MAX_DEPTH 4
#define SMALL_BODY_MAX (64 * 1024) /* bodies of every endpoint but detect and infer */
#define V2_BYTES_PER_VALUE 24 /* "0.123456789012345678," is 21: a generous legitimate bound */
#define V2_PARSE_BYTES_PER_VALUE 80 /* json-c double object + array slot + float32, bytes */
#define MAX_QUERY_ARGS 16
#define MAX_CLASS_IDS 1024

char *hy__log_escape(const char *s, char *out, size_t cap) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (!cap) return out;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        int esc = *p < 0x20 || *p >= 0x7f || *p == '\\';
        if (o + (esc ? 4 : 1) >= cap) break;
        if (esc) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return out;
}

static size_t json_ws(const char *b, size_t n, size_t i) {
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')) i++;
    return i;
}

static int is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string starting at b[i] == '"'; returns the index after it, 0 on a syntax error. */
static size_t json_string(const char *b, size_t n, size_t i, const char **why) {
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c == '"') return i + 1;
        if (c < 0x20) {
            *why = "a control character in a string";
            return 0;
        }
        if (c != '\\') continue;
        if (++i >= n) break;
        if (b[i] == 'u') {
            if (i + 4 >= n || !is_hex(b[i + 1]) || !is_hex(b[i + 2]) || !is_hex(b[i + 3]) ||
                !is_hex(b[i + 4])) {
                *why = "a bad \\u escape";
                return 0;
            }
            if (!strncmp(b + i + 1, "0000", 4)) {
                *why = "a NUL character (\\u0000) in a string";
                return 0;
            }
            i += 4;
        } else if (!strchr("\"\\/bfnrt", b[i]) || !b[i]) {
            *why = "a bad escape in a string";
            return 0;
        }
    }
    *why = "unexpected end of text in a string";
    return 0;
}

/* A number at b[i]; returns the index after it, 0 on a syntax error. */
static size_t json_number(const char *b, size_t n, size_t i, const char **why) {
    size_t s = i;
    if (i < n && b[i] == '-') i++;
    if (i < n && b[i] == '0') {
        i++;
    } else if (i < n && b[i] >= '1' && b[i] <= '9') {
        while (i < n && b[i] >= '0' && b[i] <= '9') i++;
    } else {
        *why = "a bad number";
        return 0;
    }
    if (i < n && b[i] == '.') {
        size_t d = ++i;
        while (i < n && b[i] >= '0' && b[i] <= '9') i++;
        if (i == d) {
            *why = "a bad number";
            return 0;
        }
    }
    if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        if (i < n && (b[i] == '+' || b[i] == '-')) i++;
        size_t d = i;
        while (i < n && b[i] >= '0' && b[i] <= '9') i++;
        if (i == d) {
            *why = "a bad number";
            return 0;
        }
    }
    if (i - s > JSON_NUMBER_MAX) {
        *why = "a number longer than 64 characters";
        return 0;
    }
    return i;
}

int hy__json_precheck(const char *b, size_t n, size_t max_values, size_t max_nodes, int max_depth,
                      char *err, size_t cap) {
    enum { VALUE, VALUE_OR_END, KEY, KEY_OR_END, AFTER } expect = VALUE;
    char stack[64];
    int depth = 0;
    size_t values = 0, nodes = 0, i = 0;
    const char *why = NULL;
    if (max_depth > (int)sizeof stack) max_depth = (int)sizeof stack;
    if (!b && n) n = 0;
    for (;;) {
        i = json_ws(b, n, i);
        if (i == n) {
            if (expect == AFTER && depth == 0) return 0;
            why = n ? "unexpected end of text" : "empty body";
            break;
        }
        char c = b[i];
        if (expect == AFTER && depth == 0) {
            why = "extra text after the JSON value";
            break;
        }
        if (expect == AFTER) {
            char top = stack[depth - 1];
            if (c == ',') {
                expect = top == '{' ? KEY : VALUE;
            } else if ((c == ']' && top == '[') || (c == '}' && top == '{')) {
                depth--;
            } else {
                why = top == '{' ? "expected ',' or '}'" : "expected ',' or ']'";
                break;
            }
            i++;
            continue;
        }
        if ((expect == VALUE_OR_END && c == ']') || (expect == KEY_OR_END && c == '}')) {
            depth--;
            expect = AFTER;
            i++;
            continue;
        }
        if (++values > max_values) {
            snprintf(err, cap, "the JSON body has more than the %zu values this endpoint accepts",
                     max_values);
            return -1;
        }
        /* objects, arrays, keys and strings cost json-c 50-600 bytes each, numbers ~100 */
        if ((c == '{' || c == '[' || c == '"') && ++nodes > max_nodes) {
            snprintf(err, cap,
                     "the JSON body has more than the %zu objects, arrays and strings this "
                     "endpoint accepts",
                     max_nodes);
            return -1;
        }
        if (expect == KEY || expect == KEY_OR_END) {
            if (c != '"' || !(i = json_string(b, n, i, &why))) {
                if (!why) why = "expected a string key";
                break;
            }
            i = json_ws(b, n, i);
            if (i == n || b[i] != ':') {
                why = "expected ':' after a key";
                break;
            }
            i++;
            expect = VALUE;
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth >= max_depth) {
                snprintf(err, cap, "the JSON body nests deeper than %d levels", max_depth);
                return -1;
            }
            stack[depth++] = c;
            expect = c == '{' ? KEY_OR_END : VALUE_OR_END;
            i++;
            continue;
        }
        size_t next = 0;
        if (c == '"')
            next = json_string(b, n, i, &why);
        else if (c == '-' || (c >= '0' && c <= '9'))
            next = json_number(b, n, i, &why);
        else if (n - i >= 4 && !memcmp(b + i, "true", 4))
            next = i + 4;
        else if (n - i >= 5 && !memcmp(b + i, "false", 5))
            next = i + 5;
        else if (n - i >= 4 && !memcmp(b + i, "null", 4))
            next = i + 4;
        if (!next) {
            if (!why) why = "unexpected character";
            break;
        }
        i = next;
        expect = AFTER;
    }
    snprintf(err, cap, "the body is not valid JSON: %s (byte %zu)", why, i);
    return -1;
}

size_t hy__v2_max_values(int max_side) {
    return (size_t)3 * (size_t)max_side * (size_t)max_side + V2_EXTRA_VALUES;
}

size_t hy__v2_max_nodes(int max_side) {
    return (size_t)3 * (size_t)max_side + V2_EXTRA_VALUES; /* data rows [1][3][H] + the rest */
}

/* Parses a prechecked body with json-c; the root must be an object. */
static json_object *parse_json(const char *body, size_t len, int depth, char *err, size_t cap) {
    json_tokener *tok = json_tokener_new_ex(depth + 1);
    if (!tok) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    json_object *o =
        json_tokener_parse_ex(tok, body, (int)HY_MIN(len, (size_t)INT32_MAX));
    enum json_tokener_error je = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!o || je != json_tokener_success) {
        json_object_put(o);
        snprintf(err, cap, "the body is not valid JSON: %s",
                 je == json_tokener_continue ? "unexpected end of text"
                                             : json_tokener_error_desc(je));
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

/* Flattens (possibly nested) number arrays into x[*n..cap); -1 with err on a value that is
 * not a number, not a finite float32 in [0, 1], or one too many. */
static int flatten(json_object *a, float *x, size_t cap, size_t *n, int depth, char *err,
                   size_t errcap) {
    if (depth > V2_MAX_DEPTH) return -1;
    size_t len = json_object_array_length(a);
    for (size_t i = 0; i < len; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (json_object_is_type(v, json_type_array)) {
            if (flatten(v, x, cap, n, depth + 1, err, errcap) != 0) return -1;
            continue;
        }
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
            snprintf(err, errcap, "inputs[0].data[%zu]: not a number", *n);
            return -1;
        }
        if (*n >= cap) {
            snprintf(err, errcap, "inputs[0].data: more than the %zu numbers of the shape", cap);
            return -1;
        }
        double d = json_object_get_double(v);
        float f = (float)d;
        /* the network expects pixels / 255; larger values overflow its activations */
        if (!isfinite(f) || !(f >= 0.0f && f <= 1.0f)) {
            snprintf(err, errcap,
                     "inputs[0].data[%zu]: %.9g is not a finite FP32 value in [0, 1] (pixel / 255)",
                     *n, d);
            return -1;
        }
        x[(*n)++] = f;
    }
    return 0;
}

static const char *json_str(json_object *o) {
    return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static int in_list(const char *list, const char *item, size_t len, int icase);

/* A "parameters" member: absent (NULL, ok), or an object whose keys are all in allowed
 * (','-separated); 0 ok, -1 with err naming `where`. */
static int params_check(json_object *o, const char *where, const char *allowed, char *err,
                        size_t cap) {
    json_object *p = member(o, "parameters");
    if (!p) return 0;
    if (!json_object_is_type(p, json_type_object)) {
        snprintf(err, cap, "%s.parameters: an object is required", where);
        return -1;
    }
    json_object_object_foreach(p, key, val) {
        (void)val;
        if (!in_list(allowed, key, strlen(key), 0)) {
            snprintf(err, cap, "%s.parameters.%.64s is not supported (accepted: %s)", where, key,
                     allowed);
            return -1;
        }
    }
    return 0;
}

/* A boolean parameter: 0/1, or -1 with err when it is not a boolean; dflt when absent. */
static int param_bool(json_object *o, const char *where, const char *key, int dflt, char *err,
                      size_t cap) {
    json_object *v = member(member(o, "parameters"), key);
    if (!v) return dflt;
    if (!json_object_is_type(v, json_type_boolean)) {
        snprintf(err, cap, "%s.parameters.%s: true or false is required", where, key);
        return -1;
    }
    return json_object_get_boolean(v) ? 1 : 0;
}

/* Which outputs the request asks for, and how: output0 in binary (1) or JSON (0); -1 with
 * err. Without "outputs" every output is returned, binary when binary_data_output is true. */
static int v2_outputs(json_object *req, char *err, size_t cap) {
    /* request parameters other than binary_data_output (priority, timeout, custom ones that
     * tritonclient passes on) are ignored, as a model without them would */
    json_object *rp = member(req, "parameters");
    if (rp && !json_object_is_type(rp, json_type_object)) {
        snprintf(err, cap, "parameters: an object is required");
        return -1;
    }
    int all = param_bool(req, "request", "binary_data_output", 0, err, cap);
    if (all < 0) return -1;
    json_object *outs = member(req, "outputs");
    if (!outs) return all;
    size_t n = json_object_is_type(outs, json_type_array) ? json_object_array_length(outs) : 0;
    if (!json_object_is_type(outs, json_type_array) || n > 1) {
        snprintf(err, cap, "outputs: an array naming at most the one output ('output0')");
        return -1;
    }
    if (n == 0) return all;
    json_object *o = json_object_array_get_idx(outs, 0);
    const char *name = json_str(member(o, "name"));
    if (!name || strcmp(name, "output0") != 0) {
        snprintf(err, cap, "outputs[0].name: '%.64s' is not an output of the model (expected "
                           "'output0')", name ? name : "");
        return -1;
    }
    if (params_check(o, "outputs[0]", "binary_data", err, cap) != 0) return -1;
    return param_bool(o, "outputs[0]", "binary_data", all, err, cap);
}

int hy__v2_parse_infer(const char *body, size_t len, int max_side, hy__v2_input *out, char *err,
                       size_t cap) {
    return hy__v2_parse_infer_ex(body, len, len, max_side, out, err, cap);
}

int hy__v2_parse_infer_ex(const char *body, size_t len, size_t header_len, int max_side,
                          hy__v2_input *out, char *err, size_t cap) {
    memset(out, 0, sizeof *out);
    if (header_len > len) {
        snprintf(err, cap, "Inference-Header-Content-Length: %zu is past the end of the %zu "
                           "byte body", header_len, len);
        return -1;
    }
    if (hy__json_precheck(body, header_len, hy__v2_max_values(max_side),
                          hy__v2_max_nodes(max_side), V2_MAX_DEPTH, err, cap) != 0)
        return -1;
    json_object *req = parse_json(body, header_len, V2_MAX_DEPTH, err, cap);
    if (!req) return -1;
    int rc = -1;
    size_t binary_len = len - header_len; /* bytes after the JSON header */
    json_object *inputs = member(req, "inputs");
    if (!inputs || !json_object_is_type(inputs, json_type_array) ||
        json_object_array_length(inputs) != 1) {
        snprintf(err, cap, "inputs: an array with one tensor (\"images\") is required");
        goto done;
    }
    json_object *in = json_object_array_get_idx(inputs, 0);
    const char *name = json_str(member(in, "name")), *type = json_str(member(in, "datatype"));
    json_object *jshape = member(in, "shape"), *jdata = member(in, "data");
    if (!name || strcmp(name, "images") != 0) {
        snprintf(err, cap, "inputs[0].name: '%.64s' is not an input of the model (expected 'images')",
                 name ? name : "");
        goto done;
    }
    if (!type || strcmp(type, "FP32") != 0) {
        snprintf(err, cap, "inputs[0].datatype: '%.64s' is not supported (expected 'FP32')",
                 type ? type : "");
        goto done;
    }
    long dims[4] = {0};
    int ok = jshape && json_object_is_type(jshape, json_type_array) &&
             json_object_array_length(jshape) == 4;
    for (int i = 0; ok && i < 4; i++) {
        json_object *d = json_object_array_get_idx(jshape, (size_t)i);
        ok = json_object_is_type(d, json_type_int);
        if (ok) dims[i] = (long)json_object_get_int64(d);
    }
    if (!ok || dims[0] != 1 || dims[1] != 3 || dims[2] < 32 || dims[3] < 32 || dims[2] % 32 ||
        dims[3] % 32 || dims[2] > max_side || dims[3] > max_side) {
        snprintf(err, cap,
                 "inputs[0].shape: expected [1, 3, H, W] with H and W multiples of 32 in [32, %d]%s",
                 max_side, ok ? "" : " (four integers)");
        if (ok)
            snprintf(err + strlen(err), cap - strlen(err), ", got [%ld, %ld, %ld, %ld]", dims[0],
                     dims[1], dims[2], dims[3]);
        goto done;
    }
    size_t n = (size_t)3 * (size_t)dims[2] * (size_t)dims[3];
    /* binary input: parameters.binary_data_size bytes after the header, instead of data */
    if (params_check(in, "inputs[0]", "binary_data_size", err, cap) != 0) goto done;
    json_object *jbin = member(member(in, "parameters"), "binary_data_size");
    if (jbin) {
        int64_t bsz = json_object_is_type(jbin, json_type_int) ? json_object_get_int64(jbin) : -1;
        if (jdata) {
            snprintf(err, cap, "inputs[0]: both 'data' and parameters.binary_data_size are given");
            goto done;
        }
        if (bsz < 0) {
            snprintf(err, cap, "inputs[0].parameters.binary_data_size: a byte count (an integer "
                               ">= 0) is required");
            goto done;
        }
        if ((uint64_t)bsz != (uint64_t)binary_len) {
            snprintf(err, cap,
                     "inputs[0].parameters.binary_data_size: %lld bytes, but %zu bytes follow "
                     "the %zu byte JSON header (Inference-Header-Content-Length)",
                     (long long)bsz, binary_len, header_len);
            goto done;
        }
        if (binary_len != n * sizeof(float)) {
            snprintf(err, cap,
                     "inputs[0].parameters.binary_data_size: %zu bytes for FP32 shape [1, 3, "
                     "%ld, %ld], expected %zu",
                     binary_len, dims[2], dims[3], n * sizeof(float));
            goto done;
        }
    } else if (binary_len) {
        snprintf(err, cap,
                 "%zu bytes follow the %zu byte JSON header (Inference-Header-Content-Length) "
                 "but no input gives parameters.binary_data_size",
                 binary_len, header_len);
        goto done;
    } else if (!jdata || !json_object_is_type(jdata, json_type_array)) {
        snprintf(err, cap, "inputs[0].data: an array of %zu numbers is required", n);
        goto done;
    }
    out->binary_out = v2_outputs(req, err, cap);
    if (out->binary_out < 0) goto done;
    out->x = hy__malloc(n * sizeof *out->x);
    if (!out->x) {
        snprintf(err, cap, "out of memory");
        goto done;
    }
    if (jbin) {
        if (hy__v2_binary_floats((const uint8_t *)body + header_len, n, out->x, err, cap) != 0)
            goto done;
    } else {
        size_t got = 0;
        if (flatten(jdata, out->x, n, &got, 0, err, cap) != 0) goto done;
        if (got != n) {
            snprintf(err, cap,
                     "inputs[0].data: %zu numbers for shape [1, 3, %ld, %ld], expected %zu", got,
                     dims[2], dims[3], n);
            goto done;
        }
    }
    json_object *id = member(req, "id");
    if (id && json_object_is_type(id, json_type_string)) {
        out->id_json = hy__strdup(json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
        if (!out->id_json) {
            snprintf(err, cap, "out of memory");
            goto done;
        }
    }
    out->h = (int)dims[2];
    out->w = (int)dims[3];
    rc = 0;
done:
    json_object_put(req);
    if (rc) hy__v2_input_free(out);
    return rc;
}

void hy__v2_input_free(hy__v2_input *in) {
    hy__free(in->x);
    hy__free(in->id_json);
    memset(in, 0, sizeof *in);
}

/* 1 when `item` (len bytes) is one of the ','-separated names of list (case-sensitive
 * unless icase). */
static int in_list(const char *list, const char *item, size_t len, int icase) {
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && *p == ' ') p++, n--;
        while (n && p[n - 1] == ' ') n--;
        if (n == len && (icase ? !strncasecmp(p, item, n) : !strncmp(p, item, n)) && len)
            return 1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

static int has_control(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 1;
    return 0;
}

int hy__query_arg_check(const char *allowed, const char *key, size_t key_len, const char *value,
                        size_t value_len, char *err, size_t cap) {
    char shown[96];
    char kbuf[64];
    snprintf(kbuf, sizeof kbuf, "%.*s", (int)HY_MIN(key_len, sizeof kbuf - 1), key ? key : "");
    hy__log_escape(kbuf, shown, sizeof shown);
    if (!key || has_control(key, key_len) || !in_list(allowed, key, key_len, 0)) {
        snprintf(err, cap, "unknown query parameter '%s' (accepted: %s)", shown,
                 allowed && *allowed ? allowed : "none");
        return -1;
    }
    if (value && has_control(value, value_len)) {
        snprintf(err, cap, "query parameter '%s': the value holds a NUL or control character",
                 shown);
        return -1;
    }
    return 0;
}

int hy__parse_classes(const char *s, int *ids, int cap, int max_id, int *n, char *err,
                      size_t errcap) {
    *n = 0;
    const char *p = s ? s : "";
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[16];
        char *end;
        long v = -1;
        if (len && len < sizeof item) {
            memcpy(item, p, len);
            item[len] = '\0';
            errno = 0;
            v = item[0] >= '0' && item[0] <= '9' ? strtol(item, &end, 10) : -1;
            if (v >= 0 && (*end || errno)) v = -1;
        }
        if (*n >= cap) {
            snprintf(err, errcap, "classes: more than %d class ids", cap);
            return -1;
        }
        if (v < 0 || v > max_id) {
            snprintf(err, errcap,
                     "classes: '%.64s' is not a comma-separated list of class ids in [0, %d]",
                     s ? s : "", max_id);
            return -1;
        }
        ids[(*n)++] = (int)v;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* host without its ":port" into out; 0 when malformed. */
static int host_name(const char *host, char *out, size_t cap) {
    size_t n = strlen(host);
    if (host[0] == '[') {
        const char *rb = strchr(host, ']');
        if (!rb || (rb[1] && rb[1] != ':')) return 0;
        n = (size_t)(rb - host) + 1;
    } else {
        const char *colon = strrchr(host, ':');
        if (colon) n = (size_t)(colon - host);
    }
    if (n == 0 || n >= cap) return 0;
    memcpy(out, host, n);
    out[n] = '\0';
    return 1;
}

int hy__host_allowed(const char *host, const char *hostname, const char *allow) {
    char name[256], ip[sizeof(struct in6_addr)];
    if (!host || !host_name(host, name, sizeof name) || has_control(name, strlen(name))) return 0;
    if (name[0] == '[') { /* an IPv6 literal */
        name[strlen(name) - 1] = '\0';
        return inet_pton(AF_INET6, name + 1, ip) == 1;
    }
    /* IP literals are safe: a rebinding attack needs a name the attacker's DNS answers */
    if (inet_pton(AF_INET, name, ip) == 1 || !strcasecmp(name, "localhost")) return 1;
    if (hostname && *hostname && !strcasecmp(name, hostname)) return 1;
    return in_list(allow, "*", 1, 0) || in_list(allow, name, strlen(name), 1);
}

int hy__origin_allowed(const char *origin, const char *host, const char *allow) {
    if (!origin) return 1;
    if (in_list(allow, "*", 1, 0) || in_list(allow, origin, strlen(origin), 1)) return 1;
    if (!host || !*host) return 0;
    const char *rest = !strncasecmp(origin, "http://", 7)    ? origin + 7
                       : !strncasecmp(origin, "https://", 8) ? origin + 8
                                                             : NULL;
    return rest && !strcasecmp(rest, host);
}

int hy__path_in_dirs(const char *path, const char *dirs, char *resolved, size_t cap) {
    char real[PATH_MAX], dir[PATH_MAX], rdir[PATH_MAX];
    struct stat sb;
    if (!path || !*path || !dirs || !realpath(path, real) || stat(real, &sb) != 0 ||
        !S_ISREG(sb.st_mode))
        return 0;
    for (const char *p = dirs; *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n && n < sizeof dir) {
            memcpy(dir, p, n);
            dir[n] = '\0';
            if (realpath(dir, rdir)) {
                size_t dn = strlen(rdir);
                if (dn == 1 || (!strncmp(real, rdir, dn) && real[dn] == '/')) {
                    if (strlen(real) >= cap) return 0;
                    memcpy(resolved, real, strlen(real) + 1);
                    return 1;
                }
            }
        }
        if (!colon) break;
        p = colon + 1;
    }
    return 0;
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
    hy__cache_put(&s->cache, r->ent);
    r->ent = e; /* dropped when the request completes */
    snprintf(r->model, sizeof r->model, "%s", e->name);
    if (r->want_version) { /* the versions listed by /v2/models/{m}: the one loaded last */
        char have[HY_SERVER_VERSION_LEN + 1];
        pthread_mutex_lock(&s->cache.mu);
        memcpy(have, e->version, sizeof have);
        pthread_mutex_unlock(&s->cache.mu);
        if (strcmp(have, r->version) != 0) {
            *ret = reply_error(s, c, r, MHD_HTTP_NOT_FOUND, HY__REJ_NOT_FOUND,
                               "model '%s' has no version '%s' (%s%s%s)", e->name, r->version,
                               have[0] ? "it serves version '" : "not loaded yet: no version",
                               have, have[0] ? "'" : "");
            return NULL;
        }
    }
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
        json_object_array_add(ext, json_object_new_string("binary_tensor_data"));
        json_object_array_add(ext, json_object_new_string("model_configuration"));
        json_object_array_add(ext, json_object_new_string("statistics"));
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

/* A registry model's {name, version, digest} of the version serving (null when none), swap
 * and refusal counts, and the last version refused with its reason (cache.mu held). NULL for
 * a model served from a path. */
static json_object *registry_json(const hy__mentry *e) {
    if (!e->source) return NULL;
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    const hy__regver *v = &e->reg_cur;
    int cur = e->cur && v->version > 0;
    json_object_object_add(o, "name", cur ? json_object_new_string(v->name) : NULL);
    json_object_object_add(o, "version", cur ? json_object_new_int(v->version) : NULL);
    json_object_object_add(o, "digest", cur ? json_object_new_string(v->digest) : NULL);
    json_object_object_add(o, "swaps", json_object_new_int64((int64_t)e->reg_swaps));
    json_object_object_add(o, "refusals", json_object_new_int64((int64_t)e->reg_refusals));
    json_object *r = NULL;
    if (e->reg_refused.version > 0 && (r = json_object_new_object())) {
        json_object_object_add(r, "name", json_object_new_string(e->reg_refused.name));
        json_object_object_add(r, "version", json_object_new_int(e->reg_refused.version));
        json_object_object_add(r, "digest", json_object_new_string(e->reg_refused.digest));
        json_object_object_add(r, "reason", json_str_or_null(e->reg_refused_why));
        json_object_object_add(r, "at", json_unix_or_null(e->reg_refused_unix));
    }
    json_object_object_add(o, "refused", r);
    return o;
}


/* One model's state as JSON (cache.mu held). */
static json_object *model_json(hy_server *s, const hy__mentry *e) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "state", json_object_new_string(hy__mstate_name(e->state)));
    json_object_object_add(o, "version", json_str_or_null(e->version));
    json_object_object_add(o, "path", json_object_new_string(e->path));
    json_object_object_add(o, "source", json_str_or_null(e->source));
    json_object_object_add(o, "registry", registry_json(e));
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
    /* the serving version: weights once, one context per worker (flat fields, last) */
    const hy__mver *v = e->cur;
    int64_t inferences = 0, cold = 0;
    for (int i = 0; v && i < v->n_ctx; i++) {
        inferences += (int64_t)v->ctx[i].inferences;
        cold += v->ctx[i].cold_events;
    }
    /* where it runs, what was asked for ("cuda:0", "auto") and why those differ ("": they
     * do not); null while no version is loaded */
    json_object_object_add(o, "device",
                           v ? json_object_new_string(hy_model_device(v->model)) : NULL);
    json_object_object_add(o, "device_requested",
                           v ? json_object_new_string(hy_model_device_requested(v->model)) : NULL);
    json_object_object_add(o, "device_fallback",
                           v ? json_object_new_string(hy_model_device_fallback(v->model)) : NULL);
    json_object_object_add(o, "workers", json_object_new_int(v ? v->n_ctx : 0));
    json_object_object_add(o, "weights_bytes",
                           json_object_new_int64(v ? (int64_t)v->weights_bytes : 0));
    json_object_object_add(o, "worker_bytes",
                           json_object_new_int64(v ? (int64_t)v->ctx_bytes : 0));
    json_object_object_add(o, "inferences", json_object_new_int64(inferences));
    json_object_object_add(o, "cold_events", json_object_new_int64(cold));
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

/* The shared detections record (model/result_json.h, also `hotyolo detect --json`), headed
 * by model and version, with the queue and total times. */
static json_object *detect_json(const hy__mver *v, const hy__job *j) {
    const char *const keys[] = {"model", "version"};
    const char *const vals[] = {v->entry->name, v->version};
    const char *const extra_keys[] = {"queue", "total"};
    const double extra_ms[] = {j->t_start - j->t_queued, j->t_end - j->t_queued};
    hy__result_json_opts o = {.head_keys = keys,
                              .head_vals = vals,
                              .n_head = 2,
                              .extra_timing_keys = extra_keys,
                              .extra_timing_ms = extra_ms,
                              .n_extra = 2};
    return hy__result_json(j->res, v->model, &o);
}

static enum MHD_Result h_detect(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                const char *unused) {
    enum MHD_Result ret = MHD_NO;
    char err[512];
    hy_detect_params dp = hy_detect_default_params();
    dp.iou = -1.f; /* absent: the model family's default (hy_model_detect_params), below */
    dp.max_det = 0;
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
    int classes[MAX_CLASS_IDS], n_classes = 0;
    const char *cls = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "classes");
    if (cls && hy__parse_classes(cls, classes, MAX_CLASS_IDS, 65535, &n_classes, err, sizeof err))
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    char first_name[HY_SERVER_NAME_MAX] = "";
    if (!name) {
        hy__mentry *first = hy__cache_first(&s->cache);
        if (first) memcpy(first_name, first->name, sizeof first_name);
        hy__cache_put(&s->cache, first);
        name = first_name;
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
    /* the decoded size, from the headers alone, before any pixel memory is spent */
    int iw = 0, ih = 0;
    if (hy_image_probe(img, img_len, &iw, &ih) != HY_OK) {
        hy__free(img);
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
                           "cannot decode the image: %s", hy_last_error());
    }
    if ((long long)iw * ih > s->p.max_pixels) {
        hy__free(img);
        return reply_error(s, c, r, MHD_HTTP_CONTENT_TOO_LARGE, HY__REJ_BODY_TOO_LARGE,
                           "image of %dx%d = %lld pixels is over the %lld pixel limit "
                           "(--max-pixels)",
                           iw, ih, (long long)iw * ih, s->p.max_pixels);
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
    hy_detect_params fam = hy_model_detect_params(j->ver->model);
    if (j->dp.iou < 0) j->dp.iou = fam.iou;
    if (j->dp.max_det <= 0) j->dp.max_det = fam.max_det;
    if (n_classes) {
        int nc = hy_model_num_classes(j->ver->model);
        for (int i = 0; i < n_classes; i++)
            if (classes[i] >= nc) {
                hy__job_free(s, j);
                return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
                                   "classes: class id %d is out of range (model '%s' has %d "
                                   "classes, 0..%d)",
                                   classes[i], name, nc, nc - 1);
            }
        j->classes = hy__malloc((size_t)n_classes * sizeof *j->classes);
        if (!j->classes) {
            hy__job_free(s, j);
            return MHD_NO;
        }
        memcpy(j->classes, classes, (size_t)n_classes * sizeof *classes);
        j->dp.classes = j->classes;
        j->dp.n_classes = n_classes;
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
/* The raw output's (d0, d1) at the first --imgsz (YOLOv8 (4 + nc, A), YOLOv5 (A, 5 + nc)),
 * -1 until the model has been loaded once; cache.mu held. */
static void out_dims(const hy__mentry *e, long d[2]) {
    d[0] = e->out_dims[0] ? (long)e->out_dims[0] : -1;
    d[1] = e->out_dims[1] ? (long)e->out_dims[1] : -1;
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
    long od[2];
    out_dims(e, od);
    json_object *source = json_str_or_null(e->source), *reg = registry_json(e);
    pthread_mutex_unlock(&s->cache.mu);
    json_object_array_add(inputs, tensor_meta("images", 3, sz, sz));
    json_object_array_add(outputs, tensor_meta("output0", (int)od[0], od[1], 0));
    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "versions", versions);
    json_object_object_add(o, "platform", json_object_new_string("hotyolo"));
    json_object_object_add(o, "inputs", inputs);
    json_object_object_add(o, "outputs", outputs);
    json_object_object_add(o, "source", source);
    json_object_object_add(o, "registry", reg);
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

/* Triton's model configuration (model_config.proto as JSON) of what maps: no batching
 * dimension (max_batch_size 0), so dims hold the batch of 1; the default size. */
static json_object *config_tensor(const char *name, long d1, long d2, long d3, int image) {
    json_object *o = json_object_new_object(), *dims = json_object_new_array();
    if (!o || !dims) {
        json_object_put(o);
        json_object_put(dims);
        return NULL;
    }
    json_object_array_add(dims, json_object_new_int(1));
    json_object_array_add(dims, json_object_new_int64(d1));
    json_object_array_add(dims, json_object_new_int64(d2));
    if (d3) json_object_array_add(dims, json_object_new_int64(d3));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "data_type", json_object_new_string("TYPE_FP32"));
    if (image) json_object_object_add(o, "format", json_object_new_string("FORMAT_NCHW"));
    json_object_object_add(o, "dims", dims);
    return o;
}

static enum MHD_Result h_v2_config(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                   const char *name) {
    enum MHD_Result ret = MHD_NO;
    hy__mentry *e = find_model(s, c, r, name, &ret);
    if (!e) return ret;
    int sz = s->p.imgsz[0];
    pthread_mutex_lock(&s->cache.mu);
    long od[2];
    out_dims(e, od);
    int workers = e->cur ? e->cur->n_ctx : s->p.workers;
    const char *dev = e->cur ? hy_model_device(e->cur->model) : NULL;
    int gpu = dev && strncmp(dev, "cuda", 4) == 0;
    pthread_mutex_unlock(&s->cache.mu);
    json_object *o = json_object_new_object(), *in = json_object_new_array(),
                *out = json_object_new_array(), *vp = json_object_new_object(),
                *latest = json_object_new_object(), *groups = json_object_new_array(),
                *g = json_object_new_object();
    if (!o || !in || !out || !vp || !latest || !groups || !g) {
        json_object_put(o);
        json_object_put(in);
        json_object_put(out);
        json_object_put(vp);
        json_object_put(latest);
        json_object_put(groups);
        json_object_put(g);
        return MHD_NO;
    }
    json_object_array_add(in, config_tensor("images", 3, sz, sz, 1));
    json_object_array_add(out, config_tensor("output0", od[0], od[1], 0, 0));
    json_object_object_add(latest, "num_versions", json_object_new_int(1));
    json_object_object_add(vp, "latest", latest);
    json_object_object_add(g, "name", json_object_new_string(e->name));
    json_object_object_add(g, "kind", json_object_new_string(gpu ? "KIND_GPU" : "KIND_CPU"));
    json_object_object_add(g, "count", json_object_new_int(workers));
    json_object_array_add(groups, g);
    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "platform", json_object_new_string("hotyolo"));
    json_object_object_add(o, "backend", json_object_new_string("hotyolo"));
    json_object_object_add(o, "version_policy", vp);
    json_object_object_add(o, "max_batch_size", json_object_new_int(0));
    json_object_object_add(o, "input", in);
    json_object_object_add(o, "output", out);
    json_object_object_add(o, "instance_group", groups);
    return reply_json(c, r, MHD_HTTP_OK, o);
}

static json_object *stat_duration(uint64_t count, double seconds) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    json_object_object_add(o, "count", json_object_new_int64((int64_t)count));
    json_object_object_add(o, "ns", json_object_new_int64((int64_t)llround(seconds * 1e9)));
    return o;
}

/* Triton's statistics extension, one model: every inference run counts as a success and as
 * its compute_infer (worker time); queue, input/output copies, failures and the response
 * cache are not measured per model here and read 0. */
static enum MHD_Result h_v2_stats(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                  const char *name) {
    enum MHD_Result ret = MHD_NO;
    hy__mentry *e = find_model(s, c, r, name, &ret);
    if (!e) return ret;
    pthread_mutex_lock(&s->cache.mu);
    uint64_t served = e->served, count = e->infer.count;
    double sum = e->infer.sum, last = e->last_used_unix;
    char version[HY_SERVER_VERSION_LEN + 1];
    memcpy(version, e->version, sizeof version);
    pthread_mutex_unlock(&s->cache.mu);
    json_object *o = json_object_new_object(), *arr = json_object_new_array(),
                *m = json_object_new_object(), *st = json_object_new_object(),
                *batch = json_object_new_array();
    if (!o || !arr || !m || !st || !batch) {
        json_object_put(o);
        json_object_put(arr);
        json_object_put(m);
        json_object_put(st);
        json_object_put(batch);
        return MHD_NO;
    }
    json_object_object_add(st, "success", stat_duration(count, sum));
    json_object_object_add(st, "fail", stat_duration(0, 0));
    json_object_object_add(st, "queue", stat_duration(0, 0));
    json_object_object_add(st, "compute_input", stat_duration(0, 0));
    json_object_object_add(st, "compute_infer", stat_duration(count, sum));
    json_object_object_add(st, "compute_output", stat_duration(0, 0));
    json_object_object_add(st, "cache_hit", stat_duration(0, 0));
    json_object_object_add(st, "cache_miss", stat_duration(0, 0));
    json_object_object_add(m, "name", json_object_new_string(e->name));
    json_object_object_add(m, "version", json_object_new_string(version));
    /* ms since the epoch, 0 when never used */
    json_object_object_add(m, "last_inference", json_object_new_int64((int64_t)llround(last * 1e3)));
    json_object_object_add(m, "inference_count", json_object_new_int64((int64_t)served));
    json_object_object_add(m, "execution_count", json_object_new_int64((int64_t)served));
    json_object_object_add(m, "inference_stats", st);
    json_object_object_add(m, "batch_stats", batch);
    json_object_array_add(arr, m);
    json_object_object_add(o, "model_stats", arr);
    return reply_json(c, r, MHD_HTTP_OK, o);
}

/* A small JSON object body (repository endpoints), bounded before json-c sees it. */
static json_object *parse_small_body(const hy__req *r, char *err, size_t cap) {
    if (hy__json_precheck((const char *)r->body, r->len, ADMIN_MAX_VALUES, ADMIN_MAX_VALUES,
                          ADMIN_MAX_DEPTH, err, cap) != 0)
        return NULL;
    return parse_json((const char *)r->body, r->len, ADMIN_MAX_DEPTH, err, cap);
}

/* The infer response: JSON (header_len NULL), or Triton's binary form: a JSON header of
 * *header_len bytes followed by output0's bytes (little-endian FP32). */
static char *v2_output(const hy__mver *v, const char *id_json, const hy__job *j, size_t rows,
                       size_t a, size_t *header_len, size_t *len) {
    hy__sbuf b = {0};
    hy__sbuf_put(&b, "{\"model_name\":", 14);
    json_object *js = json_object_new_string(v->entry->name);
    hy__sbuf_printf(&b, "%s,\"model_version\":\"%s\"", js ? json_object_to_json_string(js) : "\"\"",
                    v->version);
    json_object_put(js);
    if (id_json) {
        hy__sbuf_put(&b, ",\"id\":", 6);
        hy__sbuf_put(&b, id_json, strlen(id_json));
    }
    hy__sbuf_printf(&b,
                    ",\"outputs\":[{\"name\":\"output0\",\"datatype\":\"FP32\",\"shape\":[1,%zu,%"
                    "zu],",
                    rows, a);
    if (header_len) { /* binary: the JSON header, then the tensor's bytes */
        size_t nbytes = j->out_len * sizeof(float);
        hy__sbuf_printf(&b, "\"parameters\":{\"binary_data_size\":%zu}}]}", nbytes);
        char *out = b.failed ? NULL : hy__malloc(b.len + nbytes);
        if (out) {
            memcpy(out, b.p, b.len);
            hy__v2_binary_put(j->out, j->out_len, (uint8_t *)out + b.len);
            *header_len = b.len;
            *len = b.len + nbytes;
        }
        hy__sbuf_free(&b);
        return out;
    }
    hy__sbuf_put(&b, "\"data\":[", 8);
    for (size_t i = 0; i < j->out_len && !b.failed; i++)
        hy__sbuf_printf(&b, i ? ",%.9g" : "%.9g", (double)j->out[i]);
    hy__sbuf_put(&b, "]}]}", 4);
    return hy__sbuf_take(&b, len);
}

static enum MHD_Result h_v2_infer(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                  const char *name) {
    enum MHD_Result ret = MHD_NO;
    char err[512];
    hy__mentry *e = find_model(s, c, r, name, &ret);
    if (!e) return ret;
    hy__v2_input in;
    /* Triton's binary tensor data extension: the JSON header's length, the rest binary */
    size_t header_len = r->len;
    const char *ihcl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    if (ihcl && hy__v2_header_length(ihcl, r->len, &header_len, err, sizeof err) != 0)
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
    if (hy__v2_parse_infer_ex((const char *)r->body, r->len, header_len, max_imgsz(s), &in, err,
                              sizeof err) != 0)
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
    hy__free(r->body); /* the floats are all that is needed now */
    r->body = NULL;
    r->len = r->cap = 0;
    hy__job *j = NULL;
    if (hy__job_new(HY__JOB_FORWARD, &j) != HY_OK) {
        hy__v2_input_free(&in);
        return MHD_NO;
    }
    j->x = in.x;
    in.x = NULL;
    j->h = in.h;
    j->w = in.w;
    j->ver = acquire_model(s, c, r, e, &ret);
    if (!j->ver) {
        hy__job_free(s, j);
        hy__v2_input_free(&in);
        return ret;
    }
    if (r->want_version && strcmp(j->ver->version, r->version) != 0) { /* swapped meanwhile */
        ret = reply_error(s, c, r, MHD_HTTP_NOT_FOUND, HY__REJ_NOT_FOUND,
                          "model '%s' has no version '%s' (it serves version '%s')", e->name,
                          r->version, j->ver->version);
        hy__job_free(s, j);
        hy__v2_input_free(&in);
        return ret;
    }
    size_t od[2];
    if (hy_model_output_shape(j->ver->model, j->h, j->w, od) != HY_OK) {
        ret = reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", hy_last_error());
        hy__job_free(s, j);
        hy__v2_input_free(&in);
        return ret;
    }
    size_t rows = od[0], a = od[1];
    j->out_len = rows * a;
    j->out = hy__malloc(j->out_len * sizeof *j->out);
    if (!j->out) {
        hy__job_free(s, j);
        hy__v2_input_free(&in);
        return MHD_NO;
    }
    if (!run_job(s, c, r, j, &ret)) {
        hy__v2_input_free(&in);
        return ret;
    }
    size_t bad_at = j->out_len;
    for (size_t i = 0; j->st == HY_OK && i < j->out_len && bad_at == j->out_len; i++)
        if (!isfinite(j->out[i])) bad_at = i;
    if (j->st != HY_OK) {
        int bad = input_error(j->st);
        ret = reply_error(s, c, r, bad ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                          bad ? HY__REJ_BAD_REQUEST : HY__REJ_INTERNAL, "%s", j->err);
    } else if (bad_at < j->out_len) { /* never answer null: say so */
        ret = reply_error(s, c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, HY__REJ_INTERNAL,
                          "the model produced a non-finite output (element %zu)", bad_at);
    } else {
        size_t len = 0, hlen = 0;
        char *body = v2_output(j->ver, in.id_json, j, rows, a, in.binary_out ? &hlen : NULL, &len);
        if (body && in.binary_out)
            snprintf(r->infer_header_len, sizeof r->infer_header_len, "%zu", hlen);
        ret = !body                ? MHD_NO
              : in.binary_out ? reply(c, r, MHD_HTTP_OK, "application/octet-stream", body, len,
                                      NULL, NULL)
                              : reply(c, r, MHD_HTTP_OK, "application/json", body, len, NULL, NULL);
    }
    hy__job_free(s, j);
    hy__v2_input_free(&in);
    return ret;
}

// --- KServe v2: repository -------------------------------------------------------------

static enum MHD_Result h_repo_index(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                    const char *name) {
    char err[256];
    int only_ready = 0;
    if (r->len) { /* optional {"ready": true} */
        json_object *req = parse_small_body(r, err, sizeof err);
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

/* A load path a request may use: in a --model-dir, or in the folder of a model given at
 * start (or below it). resolved: its realpath. */
static int load_path_allowed(hy_server *s, const char *path, char *resolved, size_t cap) {
    if (s->p.model_dirs && hy__path_in_dirs(path, s->p.model_dirs, resolved, cap)) return 1;
    int ok = 0;
    for (hy__mentry *e = hy__cache_first(&s->cache); e; e = hy__cache_next(&s->cache, e)) {
        char dir[PATH_MAX] = "";
        pthread_mutex_lock(&s->cache.mu);
        if (e->config_path && strlen(e->config_path) < sizeof dir)
            memcpy(dir, e->config_path, strlen(e->config_path) + 1);
        pthread_mutex_unlock(&s->cache.mu);
        char *slash = strrchr(dir, '/');
        if (slash == dir) slash[1] = '\0';
        else if (slash) *slash = '\0';
        else if (dir[0]) snprintf(dir, sizeof dir, ".");
        /* one folder: no ':' splitting of a path that holds one; never the root folder (a
         * --model /x.pt, or a relative one in /, does not open the whole disk: only an explicit
         * --model-dir / does) */
        char rdir[PATH_MAX];
        if (dir[0] && realpath(dir, rdir) && strcmp(rdir, "/") != 0 && !strchr(rdir, ':') &&
            hy__path_in_dirs(path, rdir, resolved, cap)) {
            ok = 1;
            hy__cache_put(&s->cache, e);
            break;
        }
    }
    return ok;
}

/* What a client may see of a failed load: no loader text (it can quote the file). */
static const char *load_failure_text(hy_status st) {
    switch (st) {
    case HY_ERR_FORMAT:
    case HY_ERR_MISMATCH:
    case HY_ERR_UNSUPPORTED: return "not a supported YOLOv8 weights file";
    case HY_ERR_UNSAFE: return "the file holds content hotyolo refuses to load";
    case HY_ERR_IO:
    case HY_ERR_NOT_FOUND: return "the file cannot be read";
    case HY_ERR_NOMEM: return "out of memory";
    default: return hy_status_str(st);
    }
}

static enum MHD_Result h_repo_load(hy_server *s, struct MHD_Connection *c, hy__req *r,
                                   const char *name) {
    char err[512], resolved[PATH_MAX];
    const char *path = NULL;
    json_object *req = NULL;
    if (!hy__server_valid_name(name))
        return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
                           "model name '%s': use 1 to %d letters, digits, '.', '_' or '-'", name,
                           HY_SERVER_NAME_MAX - 1);
    if (r->len) {
        req = parse_small_body(r, err, sizeof err);
        if (!req) return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", err);
        json_object *jp = member(member(req, "parameters"), "path");
        if (jp && !json_object_is_type(jp, json_type_string)) {
            json_object_put(req);
            return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST,
                               "parameters.path: a string is required");
        }
        path = jp ? json_object_get_string(jp) : NULL;
        if (path && (strlen(path) != (size_t)json_object_get_string_len(jp) ||
                     !load_path_allowed(s, path, resolved, sizeof resolved))) {
            json_object_put(req);
            /* one answer whether or not the file exists: nothing to probe the disk with */
            return reply_error(s, c, r, MHD_HTTP_FORBIDDEN, HY__REJ_FORBIDDEN,
                               "parameters.path: not a file in the model directories "
                               "(--model-dir, or the folder of a --model given at start)");
        }
        json_object_put(req);
        path = path ? resolved : NULL;
    }
    hy__mentry *e = hy__cache_find(&s->cache, name);
    if (!e && !path)
        return reply_error(s, c, r, MHD_HTTP_NOT_FOUND, HY__REJ_NOT_FOUND,
                           "unknown model '%s' (give {\"parameters\": {\"path\": ...}} to add it)",
                           name);
    if (!e) {
        hy_status ast = hy__cache_add(&s->cache, name, path, 0, &e);
        if (ast == HY_ERR_BUSY)
            return reply_error(s, c, r, MHD_HTTP_CONFLICT, HY__REJ_TOO_MANY_MODELS, "%s",
                               hy_last_error());
        if (ast != HY_OK) e = hy__cache_find(&s->cache, name); /* added meanwhile */
    }
    if (!e) /* added and forgotten again by concurrent requests */
        return reply_error_ex(s, c, r, MHD_HTTP_CONFLICT, HY__REJ_UNAVAILABLE, "1", NULL,
                              "model '%s' is being loaded or unloaded by another request; "
                              "retry",
                              name);
    hy__cache_put(&s->cache, r->ent);
    r->ent = e;
    snprintf(r->model, sizeof r->model, "%s", e->name);
    hy_status lst = hy__cache_load(&s->cache, e, path);
    if (lst != HY_OK) {
        /* a name added by a request is not kept when its file does not load */
        if (hy__cache_forget(&s->cache, e)) r->model[0] = '\0';
        int bad = input_error(lst) || lst == HY_ERR_IO || lst == HY_ERR_NOT_FOUND;
        return reply_error(s, c, r, bad ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                           bad ? HY__REJ_BAD_REQUEST : HY__REJ_INTERNAL,
                           "cannot load model '%s': %s (details in the server log)", name,
                           load_failure_text(lst));
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
    /* a name added by a load request goes away with its model; configured names stay */
    if (hy__cache_forget(&s->cache, e)) r->model[0] = '\0';
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
    const char *query; /* accepted query parameters, ','-separated */
    int admin;         /* changes server state: token, JSON body, no foreign origin */
} route;

#define DETECT_QUERY "model,conf,iou,max_det,imgsz,classes"

static const route routes[] = {
    {"GET", "/", h_page, "", 0},
    {"GET", "/health/live", h_live, "", 0},
    {"GET", "/health/ready", h_ready, "", 0},
    {"GET", "/metrics", h_metrics, "", 0},
    {"GET", "/v1/models", h_models, "", 0},
    {"POST", "/v1/detect", h_detect, DETECT_QUERY, 0},
    {"GET", "/v2", h_v2_server, "", 0},
    {"GET", "/v2/health/live", h_live, "", 0},
    {"GET", "/v2/health/ready", h_ready, "", 0},
    {"GET", "/v2/models/{m}", h_v2_meta, "", 0},
    {"GET", "/v2/models/{m}/ready", h_v2_model_ready, "", 0},
    {"GET", "/v2/models/{m}/config", h_v2_config, "", 0},
    {"GET", "/v2/models/{m}/stats", h_v2_stats, "", 0},
    {"POST", "/v2/models/{m}/infer", h_v2_infer, "", 0},
    {"POST", "/v2/repository/index", h_repo_index, "", 0},
    {"POST", "/v2/repository/models/{m}/load", h_repo_load, "", 1},
    {"POST", "/v2/repository/models/{m}/unload", h_repo_unload, "", 1},
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

/* Body limit of a request, known from its headers: detection takes images up to
 * --max-body; an infer body is bounded by the largest input it can hold; the rest are
 * small JSON. */
static int is_infer_url(const char *url) {
    size_t ul = strlen(url);
    return !strncmp(url, "/v2/models/", 11) && ul > 17 && !strcmp(url + ul - 6, "/infer");
}

static size_t body_limit(const hy_server *s, const char *url) {
    size_t lim = SMALL_BODY_MAX;
    if (!strcmp(url, "/v1/detect"))
        lim = s->p.max_body;
    else if (is_infer_url(url))
        lim = hy__v2_max_values(max_imgsz(s)) * V2_BYTES_PER_VALUE;
    return HY_MIN(lim, s->p.max_body);
}

typedef struct query_scan {
    const char *allowed;
    int n, failed;
    char seen[MAX_QUERY_ARGS][16];
    char err[256];
} query_scan;

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_len, const char *value, size_t value_len) {
    query_scan *q = cls;
    if (hy__query_arg_check(q->allowed, key, key_len, value, value_len, q->err, sizeof q->err)) {
        q->failed = 1;
        return MHD_NO;
    }
    for (int i = 0; i < q->n; i++)
        if (!strcmp(q->seen[i], key)) {
            snprintf(q->err, sizeof q->err, "query parameter '%s' is given twice", key);
            q->failed = 1;
            return MHD_NO;
        }
    if (q->n < MAX_QUERY_ARGS && key_len < sizeof q->seen[0])
        snprintf(q->seen[q->n++], sizeof q->seen[0], "%s", key);
    return MHD_YES;
}

/* Constant-time comparison of a header value with the token. */
static int token_ok(const char *auth, const char *token) {
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return 0; /* scheme: any case */
    const char *got = auth + 7;
    size_t gl = strlen(got), tl = strlen(token);
    unsigned char diff = (unsigned char)(gl != tl);
    for (size_t i = 0; i < tl; i++) diff |= (unsigned char)(token[i] ^ (i < gl ? got[i] : 0));
    return diff == 0;
}

/* Content type of a state-changing request: the types an HTML form or a "simple" cross-site
 * fetch can send without a preflight (text/plain, application/x-www-form-urlencoded,
 * multipart/form-data, any case, with parameters) are refused; anything else (none,
 * application/json, application/octet-stream as tritonclient sends) is accepted: the Host and
 * Origin checks already refuse other sites. 1 ok. */
static int admin_content_type_ok(struct MHD_Connection *c) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct) return 1;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strcspn(ct, "; \t");
    static const char *const simple[] = {"text/plain", "application/x-www-form-urlencoded",
                                         "multipart/form-data"};
    for (size_t i = 0; i < HY_ARRAY_LEN(simple); i++)
        if (n == strlen(simple[i]) && !strncasecmp(ct, simple[i], n)) return 0;
    return 1;
}

/* Triton's versioned form /v2/models/{m}/versions/{v}[/ready|/config|/stats|/infer]: the
 * unversioned URL into buf, v into r (see find_model). Other URLs come back as they are. */
static const char *unversion(const char *url, hy__req *r, char *buf, size_t cap) {
    static const char *const tails[] = {"", "/ready", "/config", "/stats", "/infer"};
    if (strncmp(url, "/v2/models/", 11) != 0) return url;
    const char *m = url + 11, *ms = strchr(m, '/');
    if (!ms || ms == m || strncmp(ms, "/versions/", 10) != 0) return url;
    const char *v = ms + 10, *vs = strchr(v, '/');
    size_t vn = vs ? (size_t)(vs - v) : strlen(v);
    const char *tail = v + vn;
    size_t t = 0;
    while (t < HY_ARRAY_LEN(tails) && strcmp(tail, tails[t]) != 0) t++;
    if (vn == 0 || t == HY_ARRAY_LEN(tails)) return url;
    int n = snprintf(buf, cap, "%.*s%s", (int)(ms - url), url, tail);
    if (n < 0 || (size_t)n >= cap) return url;
    r->want_version = 1;
    snprintf(r->version, sizeof r->version, "%.*s", (int)HY_MIN(vn, sizeof r->version - 1), v);
    return buf;
}

static enum MHD_Result dispatch(hy_server *s, struct MHD_Connection *c, hy__req *r, const char *url,
                                const char *method) {
    char name[HY_SERVER_NAME_MAX + 1];
    char unv[HY_SERVER_NAME_MAX + 64];
    url = unversion(url, r, unv, sizeof unv);
    char allow[64] = "";
    /* Host and Origin first: a page on another site (or a DNS-rebound name) gets nothing */
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (host && !hy__host_allowed(host, s->hostname, s->p.allow_hosts))
        return reply_error(s, c, r, MHD_HTTP_FORBIDDEN, HY__REJ_FORBIDDEN,
                           "Host '%.100s' is not a name of this server (see --allow-host)", host);
    if (origin && !hy__origin_allowed(origin, host, s->p.allow_origins))
        return reply_error(s, c, r, MHD_HTTP_FORBIDDEN, HY__REJ_FORBIDDEN,
                           "cross-origin request from '%.100s' refused (see --allow-origin)",
                           origin);
    r->cors_origin = origin;
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (origin && !strcmp(method, "OPTIONS")) { /* CORS preflight of an allowed origin */
        for (size_t i = 0; i < HY_ARRAY_LEN(routes); i++)
            if (match(routes[i].pattern, url, name, sizeof name) && !strstr(allow, routes[i].method))
                snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                         allow[0] ? ", " : "", routes[i].method);
        if (!allow[0])
            return reply_error(s, c, r, MHD_HTTP_NOT_FOUND, HY__REJ_NOT_FOUND, "no route %s",
                               url);
        if (!strcmp(allow, "GET")) snprintf(allow, sizeof allow, "GET, HEAD");
        char *empty = hy__strdup("");
        if (!empty) return MHD_NO;
        r->cors_methods = allow; /* read by reply() only */
        enum MHD_Result ret = reply(c, r, MHD_HTTP_NO_CONTENT, "text/plain", empty, 0, NULL, NULL);
        r->cors_methods = NULL;
        return ret;
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(routes); i++) {
        const route *rt = &routes[i];
        if (!match(rt->pattern, url, name, sizeof name)) continue;
        if (!strcmp(method, rt->method) || (is_get && !strcmp(rt->method, "GET"))) {
            if (rt->admin && s->p.admin_token && *s->p.admin_token &&
                !token_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_AUTHORIZATION),
                          s->p.admin_token)) {
                r->www_auth = "Bearer realm=\"hotyolo\"";
                return reply_error(s, c, r, MHD_HTTP_UNAUTHORIZED, HY__REJ_UNAUTHORIZED,
                                   "%s needs 'Authorization: Bearer <token>' (--admin-token)",
                                   url);
            }
            if (rt->admin && !admin_content_type_ok(c))
                return reply_error(s, c, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, HY__REJ_MEDIA_TYPE,
                                   "%s: a form or text/plain body is refused; send "
                                   "'Content-Type: application/json' (or no body)",
                                   url);
            query_scan q = {.allowed = rt->query};
            MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, query_arg, &q);
            if (q.failed)
                return reply_error(s, c, r, MHD_HTTP_BAD_REQUEST, HY__REJ_BAD_REQUEST, "%s", q.err);
            return rt->fn(s, c, r, name);
        }
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
        r->limit = body_limit(s, url);
        *req_cls = r;
        atomic_fetch_add(&s->in_flight, 1);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
        if (n > 0 && n <= r->limit) {
            /* One budget for the bodies of all connections (--max-inflight-bytes), taken before
             * a byte is buffered; an infer body also pays for its parse (json-c objects). */
            size_t cost = (size_t)n;
            const char *ihcl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                           "Inference-Header-Content-Length");
            size_t hl = (size_t)n;
            char e[8];
            if (is_infer_url(url) && ihcl && hy__v2_header_length(ihcl, (size_t)n, &hl, e, 1) == 0)
                /* binary tensors: the JSON header's parse, one float copy of the rest */
                cost += (size_t)HY_MIN(hl / 2 + 1, hy__v2_max_values(max_imgsz(s))) *
                            V2_PARSE_BYTES_PER_VALUE + ((size_t)n - hl);
            else if (is_infer_url(url))
                cost += (size_t)HY_MIN(n / 2 + 1, hy__v2_max_values(max_imgsz(s))) *
                    V2_PARSE_BYTES_PER_VALUE;
            long long now = atomic_fetch_add(&s->body_bytes, (long long)cost) + (long long)cost;
            if (now > (long long)s->p.max_inflight_bytes) {
                atomic_fetch_sub(&s->body_bytes, (long long)cost);
                r->over_budget = 1;
            } else {
                r->budget = cost;
            }
        }
        if (n > r->limit) {
            r->too_large = 1;
            /* A client waiting for "100 Continue" gets the 413 before it sends the body. */
            const char *expect =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            if (expect && !strcasecmp(expect, "100-continue"))
                return reply_error(s, conn, r, MHD_HTTP_CONTENT_TOO_LARGE, HY__REJ_BODY_TOO_LARGE,
                                   "request body of %llu bytes is over the %zu byte limit of %s",
                                   n, r->limit, url);
        }
        return MHD_YES;
    }
    if (*upload_data_size) { /* a chunk of body */
        if (!r->too_large && !r->over_budget &&
            append_body(r, upload_data, *upload_data_size, r->limit) != 0) {
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
                           "request body is over the %zu byte limit of %s", r->limit, url);
    if (r->over_budget)
        return reply_error_ex(s, conn, r, MHD_HTTP_SERVICE_UNAVAILABLE, HY__REJ_UNAVAILABLE, "1",
                              NULL,
                              "the server holds too many request bodies now "
                              "(--max-inflight-bytes %zu); retry shortly",
                              s->p.max_inflight_bytes);
    return dispatch(s, conn, r, url, method);
}

void hy__route_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    hy_server *s = cls;
    hy__req *r = *req_cls;
    if (!r) return;
    double ms = hy__now_ms() - r->t0;
    if (r->ent) { /* unlinked meanwhile (a concurrent unload): no series for a gone name */
        pthread_mutex_lock(&s->cache.mu);
        if (r->ent->unlinked) r->model[0] = '\0';
        pthread_mutex_unlock(&s->cache.mu);
    }
    if (r->code) hy__metrics_request(&s->metrics, r->model, r->code, ms / 1e3);
    hy_log_level lvl = r->code >= 500 || !r->code ? HY_LOG_ERROR
                       : r->code >= 400           ? HY_LOG_WARN
                                                  : HY_LOG_INFO;
    const char *aborted =
        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)";
    /* the URL and error texts carry request bytes: escaped, so no line can be forged */
    char url[512], err[1024];
    hy__log_escape(r->url ? r->url : "?", url, sizeof url);
    if (r->err[0])
        hy__server_log(s, lvl, "%s %s %d %.1f ms%s: %s", r->method, url, r->code, ms, aborted,
                       hy__log_escape(r->err, err, sizeof err));
    else
        hy__server_log(s, lvl, "%s %s %d %.1f ms%s", r->method, url, r->code, ms, aborted);
    hy__cache_put(&s->cache, r->ent);
    atomic_fetch_sub(&s->in_flight, 1);
    if (r->budget) atomic_fetch_sub(&s->body_bytes, (long long)r->budget);
    hy__free(r->body);
    hy__free(r->url);
    hy__free(r);
    *req_cls = NULL;
}
