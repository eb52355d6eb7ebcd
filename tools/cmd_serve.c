/* hotyolo serve --model NAME=PATH[,pin] ... : HTTP inference server (docs/http-api.md).
 * PATH may be registry:REF (served from the local registry, followed while serving) or
 * oci://HOST[:PORT]/REPO[:TAG] (pulled into the local registry at start-up; docs/registry.md
 * "Serving and rollout").
 *
 * SIGTERM / SIGINT: readiness turns 503, the listening socket closes, requests in flight
 * finish, everything is freed, exit 0. Log lines (access log, model lifecycle, errors) go to
 * stderr. Exit 1 when a pinned model cannot be loaded or the address cannot be bound,
 * 2 on a usage error. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "hotyolo/registry.h"
#include "hotyolo/server.h"

#define CMD "serve"
#define MAX_MODELS 64

typedef struct serve_model {
    char *name, *path; /* malloc'd */
    int pinned;
} serve_model;

typedef struct serve_opts {
    hy_server_params p;
    char *model_dirs, *allow_hosts, *allow_origins, *admin_token; /* malloc'd lists, or NULL */
    serve_model models[MAX_MODELS];
    int n_models;
    const char *port_file;
    char *registry_dir; /* --registry, HOTYOLO_REGISTRY or (oci:// models) the cache; malloc'd */
    int quiet, verbose;
} serve_opts;

static void help(void) {
    printf("Usage: hotyolo serve --model NAME=PATH[,pin] ... [options]\n"
           "\n"
           "Serves YOLOv8 models over HTTP: POST /v1/detect, GET /v1/models, GET /metrics\n"
           "(Prometheus), GET /health/live and /health/ready, and a KServe v2 subset\n"
           "(/v2/models/NAME/infer, /v2/repository/...). See docs/http-api.md.\n"
           "\n"
           "Options (a value may also be given as --option=VALUE):\n"
           "  --model NAME=PATH[,pin]  serve the weights file PATH (.pt, .safetensors, .onnx)\n"
           "                  as NAME; repeatable, the first is the default model of\n"
           "                  /v1/detect. ',pin': load and warm it before listening and\n"
           "                  never evict it; otherwise it loads on first use.\n"
           "                  PATH may be registry:REF (NAME@3, NAME@production, NAME,\n"
           "                  PROJECT: resolved in --registry, and followed while serving:\n"
           "                  a version it names later is checked and swapped in) or\n"
           "                  oci://HOST[:PORT]/REPO[:TAG] (pulled into the local registry\n"
           "                  as NAME at start; the newest cached version of NAME when the\n"
           "                  remote cannot be reached)\n"
           "  --registry DIR  the local registry (default: $HOTYOLO_REGISTRY; for oci://\n"
           "                  models, else $XDG_CACHE_HOME/hotyolo/registry or\n"
           "                  ~/.cache/hotyolo/registry)\n"
           "  --registry-poll S  resolve registry:REF models again every S seconds; 0 = only\n"
           "                  at start (default 2)\n"
           "  --host ADDR     numeric address to bind (default 127.0.0.1)\n"
           "  --port N        TCP port; 0 = any free port (default 8080)\n"
           "  --port-file F   write the bound port to F once listening (default: none)\n"
           "  --imgsz N[,N..] served inference sizes, multiples of 32; the first is the\n"
           "                  default (default 640)\n"
           "  --warmup N      warm-up passes per prepared shape (default 3)\n"
           "  --no-warmup     plan shapes but run no warm-up pass\n"
           "  --threads N     inference threads per model; 0 = one per online core (default 0)\n"
           "  --no-cache      read .pt/.onnx weights directly, not through the packed-weights\n"
           "                  cache (hotyolo cache --help)\n"
           "  --device NAME   where the models run: cpu, ref (plain-C reference kernels;\n"
           "                  much slower), cuda, cuda:N or N (GPU N), auto (cuda:0 when\n"
           "                  it can run the models, else cpu) (default cpu). A GPU that\n"
           "                  cannot be used falls back to cpu with a warning; /metrics\n"
           "                  (hotyolo_model_device_fallback) and GET /v1/models show it\n"
           "  --no-fallback   a GPU that cannot be used fails the model's load instead\n"
           "  --workers N     inference worker threads (default 2)\n"
           "  --max-queue N   requests waiting for a worker before 503 (default 64)\n"
           "  --timeout MS    per-request limit (queue + inference) before 504; 0 = none\n"
           "                  (default 30000)\n"
           "  --max-body B    request body limit in bytes before 413 (default 33554432)\n"
           "  --memory-budget MB  evict least recently used unpinned models to stay under MB\n"
           "                  megabytes (10^6 bytes); 0 = unlimited (default 0)\n"
           "  --rewarm-idle S re-warm a model idle for S seconds before its next request;\n"
           "                  0 = off (default 0)\n"
           "  --rewarm-interval S  re-warm every loaded model every S seconds; 0 = off\n"
           "                  (default 0)\n"
           "  --listen-early  listen at once: /health/live 200, /health/ready 503 until the\n"
           "                  pinned models are warm (default: listen once they are)\n"
           "  --no-lazy       answer 503 for a model that is not loaded instead of loading it\n"
           "  --max-connections N  concurrent connections (default 256; 8 more are kept\n"
           "                  for /health/... and /metrics)\n"
           "  --max-connections-per-ip N  of those, from one client address (default 32)\n"
           "  --header-timeout S  a request head must arrive within S seconds of connecting\n"
           "                  (absolute, slow bytes do not extend it; default 5)\n"
           "  --body-timeout S  a request body must arrive within S seconds of its head\n"
           "                  (default 60)\n"
           "  --send-timeout S  a response must be read by the client within S seconds of\n"
           "                  being ready, else the connection is closed; 0 = none (default 60)\n"
           "  --max-inflight-bytes B  request bodies held in memory at once, all clients\n"
           "                  together (infer bodies count twice); over it 503 (default\n"
           "                  536870912)\n"
           "  --max-pixels N  decoded image size limit, width x height, before 413\n"
           "                  (default 40000000)\n"
           "  --max-models N  served model names, configured + loaded on request (default 64)\n"
           "  --model-dir DIR a folder load requests may read weights from (repeatable;\n"
           "                  default: only the folders of the --model files)\n"
           "  --allow-host NAME  also accept this Host header name (repeatable; default:\n"
           "                  localhost, IP addresses and this machine's hostname)\n"
           "  --allow-origin ORIGIN  also accept requests from this browser Origin, e.g.\n"
           "                  https://app.example (repeatable; default: same origin only)\n"
           "  --admin-token-file F  repository load/unload need 'Authorization: Bearer\n"
           "                  TOKEN', TOKEN being F's first line (or env HY_ADMIN_TOKEN)\n"
           "  --admin-token TOKEN  the same, given inline (visible in ps: prefer the file)\n"
           "  -q, --quiet     log only warnings and errors (no access log)\n"
           "  -v, --verbose   also log the library's messages\n"
           "  -h, --help      show this help\n"
           "\n"
           "Exit status: 0 after SIGTERM/SIGINT (requests in flight finish first), 1 when a\n"
           "pinned model cannot be loaded or the address cannot be bound, 2 usage error.\n"
           "\n"
           "Example:\n"
           "  hotyolo serve --model yolov8n=yolov8n.pt,pin --port 8080\n"
           "  curl --data-binary @bus.jpg 'http://127.0.0.1:8080/v1/detect?conf=0.4'\n");
}

// --- logging ---------------------------------------------------------------------------

static int log_min = HY_LOG_INFO;

static void log_line(hy_log_level level, const char *msg, void *user_data) {
    static const char *names[] = {"debug", "info", "warning", "error"};
    if ((int)level < log_min) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    const char *lv = level >= HY_LOG_DEBUG && level <= HY_LOG_ERROR ? names[level] : "log";
    fprintf(stderr, "%s.%03dZ hotyolo serve: %s: %s\n", ts, (int)(tv.tv_usec / 1000), lv, msg);
}

static void lib_log(hy_log_level level, const char *msg, void *user_data) {
    char buf[1100];
    snprintf(buf, sizeof buf, "library: %s", msg);
    log_line(level, buf, user_data);
}

// --- options ---------------------------------------------------------------------------

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi) {
        hy_cli_error(CMD, "%s: '%s' is not a number in [%g, %g]", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* "NAME=PATH[,pin]" */
static int add_model(serve_opts *o, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        hy_cli_error(CMD, "--model: '%s' is not NAME=PATH[,pin]", arg);
        return -1;
    }
    if (o->n_models == MAX_MODELS) {
        hy_cli_error(CMD, "--model: at most %d models", MAX_MODELS);
        return -1;
    }
    size_t plen = strlen(eq + 1);
    int pinned = plen > 4 && !strcmp(eq + 1 + plen - 4, ",pin");
    if (pinned) plen -= 4;
    serve_model *m = &o->models[o->n_models];
    m->name = strndup(arg, (size_t)(eq - arg));
    m->path = strndup(eq + 1, plen);
    m->pinned = pinned;
    if (!m->name || !m->path) {
        free(m->name);
        free(m->path);
        hy_cli_error(CMD, "out of memory");
        return -1;
    }
    o->n_models++;
    return 0;
}

static int parse_imgsz(const char *opt, const char *s, hy_server_params *p) {
    p->n_imgsz = 0;
    const char *q = s;
    for (;;) {
        const char *comma = strchr(q, ',');
        size_t len = comma ? (size_t)(comma - q) : strlen(q);
        char item[16];
        if (len == 0 || len >= sizeof item || p->n_imgsz == HY_SERVER_MAX_IMGSZ) {
            hy_cli_error(CMD, "%s: '%s' is not a list of up to %d sizes, e.g. 640 or 640,320", opt,
                         s, HY_SERVER_MAX_IMGSZ);
            return -1;
        }
        memcpy(item, q, len);
        item[len] = '\0';
        int v;
        if (hy_cli_parse_int(CMD, opt, item, 32, 4096, &v)) return -1;
        if (v % 32) {
            hy_cli_error(CMD, "%s: %d is not a multiple of 32 (the model's largest stride)", opt,
                         v);
            return -1;
        }
        p->imgsz[p->n_imgsz++] = v;
        if (!comma) break;
        q = comma + 1;
    }
    return 0;
}

/* Appends val to *list (malloc'd), sep-separated. */
static int append_list(char **list, char sep, const char *opt, const char *val) {
    size_t old = *list ? strlen(*list) : 0;
    char *p = realloc(*list, old + strlen(val) + 2);
    if (!p) {
        hy_cli_error(CMD, "%s: out of memory", opt);
        return -1;
    }
    if (old) p[old++] = sep;
    memcpy(p + old, val, strlen(val) + 1);
    *list = p;
    return 0;
}

/* The token: the first line of a file (not echoed anywhere). */
static int read_token_file(const char *opt, const char *path, char **out) {
    FILE *f = fopen(path, "r");
    char buf[1024];
    if (!f || !fgets(buf, sizeof buf, f)) {
        hy_cli_error(CMD, "%s: cannot read a token from '%s'%s%s", opt, path, f ? "" : ": ",
                     f ? "" : strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    if (strlen(buf) < 8) {
        hy_cli_error(CMD, "%s: the token in '%s' is shorter than 8 characters", opt, path);
        return -1;
    }
    free(*out);
    *out = strdup(buf);
    return *out ? 0 : -1;
}

static int default_cache_dir(char **out);

/* 0 ok, 1 --help shown, -1 usage error (printed). */
static int parse_args(int argc, char **argv, serve_opts *o) {
    enum { O_MODEL, O_HOST, O_PORT, O_PORTFILE, O_IMGSZ, O_WARMUP, O_NOWARMUP, O_THREADS,
           O_WORKERS, O_MAXQ, O_TIMEOUT, O_MAXBODY, O_BUDGET, O_IDLE, O_INTERVAL, O_EARLY,
           O_NOLAZY, O_MAXCONN, O_MAXCONNIP, O_HDRTIMEOUT, O_BODYTIMEOUT, O_QUIET, O_VERBOSE, O_HELP, O_MAXPIX, O_MAXMODELS, O_MODELDIR,
           O_ALLOWHOST, O_ALLOWORIGIN, O_TOKENFILE, O_TOKEN, O_SENDTIMEOUT, O_MAXINFLIGHT, O_DEVICE,
           O_REGISTRY, O_REGPOLL, O_NOFALLBACK };
    static const hy_cli_opt table[] = {
        {"--model", NULL, O_MODEL, 1},
        {"--registry", NULL, O_REGISTRY, 1},
        {"--registry-poll", NULL, O_REGPOLL, 1},
        {"--host", NULL, O_HOST, 1},
        {"--port", NULL, O_PORT, 1},
        {"--port-file", NULL, O_PORTFILE, 1},
        {"--imgsz", NULL, O_IMGSZ, 1},
        {"--warmup", NULL, O_WARMUP, 1},
        {"--no-warmup", NULL, O_NOWARMUP, 0},
        {"--threads", NULL, O_THREADS, 1},
        {"--device", NULL, O_DEVICE, 1},
        {"--no-fallback", NULL, O_NOFALLBACK, 0},
        {"--workers", NULL, O_WORKERS, 1},
        {"--max-queue", NULL, O_MAXQ, 1},
        {"--timeout", NULL, O_TIMEOUT, 1},
        {"--max-body", NULL, O_MAXBODY, 1},
        {"--memory-budget", NULL, O_BUDGET, 1},
        {"--rewarm-idle", NULL, O_IDLE, 1},
        {"--rewarm-interval", NULL, O_INTERVAL, 1},
        {"--listen-early", NULL, O_EARLY, 0},
        {"--no-lazy", NULL, O_NOLAZY, 0},
        {"--max-connections", NULL, O_MAXCONN, 1},
        {"--max-connections-per-ip", NULL, O_MAXCONNIP, 1},
        {"--header-timeout", NULL, O_HDRTIMEOUT, 1},
        {"--body-timeout", NULL, O_BODYTIMEOUT, 1},
        {"--send-timeout", NULL, O_SENDTIMEOUT, 1},
        {"--max-inflight-bytes", NULL, O_MAXINFLIGHT, 1},
        {"--max-pixels", NULL, O_MAXPIX, 1},
        {"--max-models", NULL, O_MAXMODELS, 1},
        {"--model-dir", NULL, O_MODELDIR, 1},
        {"--allow-host", NULL, O_ALLOWHOST, 1},
        {"--allow-origin", NULL, O_ALLOWORIGIN, 1},
        {"--admin-token-file", NULL, O_TOKENFILE, 1},
        {"--admin-token", NULL, O_TOKEN, 1},
        {"--quiet", "-q", O_QUIET, 0},
        {"--verbose", "-v", O_VERBOSE, 0},
        {"--help", "-h", O_HELP, 0},
    };
    int positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof table[0], argc, argv, &i,
                                &positional_only, &val);
        if (k == -1) return -1;
        if (k == -3) continue;
        if (k == -2) {
            hy_cli_error(CMD, "unexpected argument '%s' (models are given with --model NAME=PATH)",
                         argv[i]);
            return -1;
        }
        const char *opt = table[k].name;
        double d;
        switch (table[k].id) {
        case O_MODEL:
            if (add_model(o, val)) return -1;
            break;
        case O_HOST: o->p.host = val; break;
        case O_REGISTRY:
            if (!*val) {
                hy_cli_error(CMD, "%s: empty path", opt);
                return -1;
            }
            free(o->registry_dir);
            if (!(o->registry_dir = strdup(val))) return -1;
            break;
        case O_REGPOLL:
            if (parse_double(opt, val, 0, 86400, &o->p.registry_poll_s)) return -1;
            break;
        case O_PORT:
            if (hy_cli_parse_int(CMD, opt, val, 0, 65535, &o->p.port)) return -1;
            break;
        case O_PORTFILE:
            if (!*val) {
                hy_cli_error(CMD, "%s: empty path", opt);
                return -1;
            }
            o->port_file = val;
            break;
        case O_IMGSZ:
            if (parse_imgsz(opt, val, &o->p)) return -1;
            break;
        case O_WARMUP:
            if (hy_cli_parse_int(CMD, opt, val, 0, 1000, &o->p.warmup_runs)) return -1;
            break;
        case O_NOWARMUP: o->p.warmup_runs = 0; break;
        case O_THREADS:
            if (hy_cli_parse_int(CMD, opt, val, 0, 1024, &o->p.n_threads)) return -1;
            break;
        case O_DEVICE: /* the spelling only; whether it can be used is decided at load */
            if (hy_cli_parse_device(CMD, opt, val, &o->p.device)) return -1;
            break;
        case O_NOFALLBACK: o->p.no_fallback = 1; break;
        case O_WORKERS:
            if (hy_cli_parse_int(CMD, opt, val, 1, 256, &o->p.workers)) return -1;
            break;
        case O_MAXQ:
            if (hy_cli_parse_int(CMD, opt, val, 1, 1000000, &o->p.max_queue)) return -1;
            break;
        case O_TIMEOUT:
            if (hy_cli_parse_int(CMD, opt, val, 0, 86400000, &o->p.timeout_ms)) return -1;
            break;
        case O_MAXBODY:
            if (parse_double(opt, val, 1, 1e12, &d)) return -1;
            if (d != floor(d)) {
                hy_cli_error(CMD, "%s: '%s' is not a whole number of bytes", opt, val);
                return -1;
            }
            o->p.max_body = (size_t)d;
            break;
        case O_BUDGET:
            if (parse_double(opt, val, 0, 1e9, &d)) return -1;
            o->p.memory_budget = (size_t)(d * 1e6);
            break;
        case O_IDLE:
            if (parse_double(opt, val, 0, 1e7, &o->p.rewarm_idle_s)) return -1;
            break;
        case O_INTERVAL:
            if (parse_double(opt, val, 0, 1e7, &o->p.rewarm_interval_s)) return -1;
            break;
        case O_EARLY: o->p.listen_early = 1; break;
        case O_NOLAZY: o->p.lazy = 0; break;
        case O_MAXCONN:
            if (hy_cli_parse_int(CMD, opt, val, 1, 100000, &o->p.max_connections)) return -1;
            break;
        case O_MAXCONNIP:
            if (hy_cli_parse_int(CMD, opt, val, 1, 100000, &o->p.max_connections_per_ip))
                return -1;
            break;
        case O_HDRTIMEOUT:
            if (parse_double(opt, val, 0.001, 3600, &d)) return -1;
            o->p.header_timeout_ms = (int)ceil(d * 1000);
            break;
        case O_BODYTIMEOUT:
            if (parse_double(opt, val, 0.001, 86400, &d)) return -1;
            o->p.body_timeout_ms = (int)ceil(d * 1000);
            break;
        case O_SENDTIMEOUT:
            if (parse_double(opt, val, 0, 86400, &d)) return -1;
            o->p.send_timeout_ms = (int)ceil(d * 1000);
            break;
        case O_MAXINFLIGHT:
            if (parse_double(opt, val, 1, 1e15, &d)) return -1;
            o->p.max_inflight_bytes = (size_t)d;
            break;
        case O_MAXPIX:
            if (parse_double(opt, val, 1, 1e12, &d)) return -1;
            if (d != floor(d)) {
                hy_cli_error(CMD, "%s: '%s' is not a whole number of pixels", opt, val);
                return -1;
            }
            o->p.max_pixels = (long long)d;
            break;
        case O_MAXMODELS:
            if (hy_cli_parse_int(CMD, opt, val, 1, 100000, &o->p.max_models)) return -1;
            break;
        case O_MODELDIR:
            if (strchr(val, ':') || !*val) {
                hy_cli_error(CMD, "%s: '%s': an existing folder without ':' is required", opt, val);
                return -1;
            }
            if (append_list(&o->model_dirs, ':', opt, val)) return -1;
            break;
        case O_ALLOWHOST:
        case O_ALLOWORIGIN:
            if (!*val || strchr(val, ',')) {
                hy_cli_error(CMD, "%s: '%s': one non-empty name per option", opt, val);
                return -1;
            }
            if (append_list(table[k].id == O_ALLOWHOST ? &o->allow_hosts : &o->allow_origins, ',',
                            opt, val))
                return -1;
            break;
        case O_TOKENFILE:
            if (read_token_file(opt, val, &o->admin_token)) return -1;
            break;
        case O_TOKEN:
            if (strlen(val) < 8) {
                hy_cli_error(CMD, "%s: the token is shorter than 8 characters", opt);
                return -1;
            }
            free(o->admin_token);
            o->admin_token = strdup(val);
            if (!o->admin_token) {
                hy_cli_error(CMD, "out of memory");
                return -1;
            }
            break;
        case O_QUIET: o->quiet = 1; break;
        case O_VERBOSE: o->verbose = 1; break;
        case O_HELP: help(); return 1;
        }
    }
    const char *env = getenv("HY_ADMIN_TOKEN");
    if (!o->admin_token && env && *env) {
        if (strlen(env) < 8) {
            hy_cli_error(CMD, "HY_ADMIN_TOKEN: the token is shorter than 8 characters");
            return -1;
        }
        if (!(o->admin_token = strdup(env))) return -1;
    }
    const char *renv = getenv("HOTYOLO_REGISTRY");
    if (!o->registry_dir && renv && *renv && !(o->registry_dir = strdup(renv))) return -1;
    for (int i = 0; !o->registry_dir && i < o->n_models; i++)
        if (!strncmp(o->models[i].path, "oci://", 6) && default_cache_dir(&o->registry_dir))
            return -1;
    o->p.registry_dir = o->registry_dir;
    o->p.model_dirs = o->model_dirs;
    o->p.allow_hosts = o->allow_hosts;
    o->p.allow_origins = o->allow_origins;
    o->p.admin_token = o->admin_token;
    if (o->n_models == 0) {
        hy_cli_error(
            CMD,
            "no model: give at least one --model NAME=PATH[,pin] (see 'hotyolo serve --help')");
        return -1;
    }
    return 0;
}

// --- oci:// models ---------------------------------------------------------------------

/* $XDG_CACHE_HOME/hotyolo/registry, else ~/.cache/hotyolo/registry (malloc'd). */
static int default_cache_dir(char **out) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char buf[4096];
    int n = xdg && *xdg ? snprintf(buf, sizeof buf, "%s/hotyolo/registry", xdg)
            : home && *home ? snprintf(buf, sizeof buf, "%s/.cache/hotyolo/registry", home)
                            : -1;
    if (n < 0 || (size_t)n >= sizeof buf) {
        hy_cli_error(CMD, "oci:// models need a local registry: give --registry DIR (neither "
                          "XDG_CACHE_HOME nor HOME is set)");
        return -1;
    }
    return (*out = strdup(buf)) ? 0 : -1;
}

/* mkdir -p of dir's parents (the registry makes dir itself). */
static void make_parents(const char *dir) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755); /* an error shows when the registry is opened */
        *p = '/';
    }
}

/* The version of a registry entry (JSON), 0 when absent. */
static int entry_version(const char *json) {
    json_object *o = json ? json_tokener_parse(json) : NULL, *v = NULL;
    int n = o && json_object_object_get_ex(o, "version", &v) ? json_object_get_int(v) : 0;
    json_object_put(o);
    return n;
}

/* An oci:// model: pulled into the local registry as its NAME, then served as
 * registry:NAME@V (V: the pulled version). The remote unreachable or refused: the newest
 * cached version of NAME, logged. Returns HY_CLI_OK (m->path replaced) or the exit code,
 * printed. */
static int pull_model(serve_opts *o, serve_model *m) {
    hy_registry *r = NULL;
    make_parents(o->registry_dir);
    if (hy_registry_open(o->registry_dir, 1, &r) != HY_OK) {
        hy_cli_error(CMD, "--model %s=%s: %s", m->name, m->path, hy_last_error());
        return HY_CLI_RUNTIME;
    }
    hy_oci_params op = hy_oci_default_params();
    int version = 0;
    hy_status st = hy_registry_pull(r, m->path, m->name, &op, &version);
    char msg[1024];
    if (st == HY_OK) {
        snprintf(msg, sizeof msg, "model '%s': pulled %s into %s as %s@%d", m->name, m->path,
                 o->registry_dir, m->name, version);
        log_line(HY_LOG_INFO, msg, NULL);
    } else if (st == HY_ERR_INVALID_ARG) {
        hy_cli_error(CMD, "--model %s=%s: %s", m->name, m->path, hy_last_error());
        hy_registry_close(r);
        return HY_CLI_USAGE;
    } else {
        char why[512];
        snprintf(why, sizeof why, "%s", hy_last_error());
        char *path = NULL, *json = NULL;
        if (hy_registry_resolve(r, m->name, &path, &json) == HY_OK)
            version = entry_version(json);
        hy_free(path);
        hy_free(json);
        if (version <= 0) {
            hy_cli_error(CMD, "--model %s=%s: cannot pull %s (%s), and %s holds no cached "
                              "version of '%s'",
                         m->name, m->path, m->path, why, o->registry_dir, m->name);
            hy_registry_close(r);
            return HY_CLI_RUNTIME;
        }
        snprintf(msg, sizeof msg, "model '%s': cannot pull %s (%s); serving the newest cached "
                                  "version, %s@%d from %s",
                 m->name, m->path, why, m->name, version, o->registry_dir);
        log_line(HY_LOG_WARN, msg, NULL);
    }
    hy_registry_close(r);
    char ref[160];
    snprintf(ref, sizeof ref, "registry:%s@%d", m->name, version);
    char *p = strdup(ref);
    if (!p) return HY_CLI_RUNTIME;
    free(m->path);
    m->path = p;
    return HY_CLI_OK;
}

// --- signals ---------------------------------------------------------------------------

typedef struct sig_ctx {
    sigset_t set;
    hy_server *srv;
} sig_ctx;

/* Waits for SIGTERM/SIGINT (asks the server to stop) until SIGUSR1 (sent by main: done). */
static void *signal_main(void *arg) {
    sig_ctx *sc = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&sc->set, &sig) != 0) continue;
        if (sig == SIGUSR1) break;
        fprintf(stderr, "hotyolo serve: %s: draining requests in flight, then exiting\n",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
        hy_server_request_stop(sc->srv);
    }
    return NULL;
}

static int write_port_file(const char *path, int port) {
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    if (!tmp) return -1;
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%d\n", port) > 0;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) {
        hy_cli_error(CMD, "--port-file: cannot write '%s': %s", path, strerror(errno));
        remove(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

// --- command ---------------------------------------------------------------------------

int hy_cli_serve(int argc, char **argv) {
    serve_opts o;
    memset(&o, 0, sizeof o);
    o.p = hy_server_default_params();
    hy_server *srv = NULL;
    sig_ctx sc;
    pthread_t sig_thread;
    int sig_running = 0, rc = HY_CLI_OK;

    int pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        rc = pr > 0 ? HY_CLI_OK : HY_CLI_USAGE;
        goto done;
    }
    log_min = o.quiet ? HY_LOG_WARN : o.verbose ? HY_LOG_DEBUG : HY_LOG_INFO;
    if (o.verbose) hy_log_set(lib_log, NULL);
    o.p.log = log_line;

    if (hy_server_create(&o.p, &srv) != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        rc = HY_CLI_USAGE;
        goto done;
    }
    for (int i = 0; i < o.n_models; i++) {
        if (!strncmp(o.models[i].path, "oci://", 6) && (rc = pull_model(&o, &o.models[i])))
            goto done;
        hy_status ast =
            hy_server_add_model(srv, o.models[i].name, o.models[i].path, o.models[i].pinned);
        if (ast != HY_OK) {
            hy_cli_error(CMD, "--model: %s", hy_last_error());
            rc = ast == HY_ERR_INVALID_ARG ? HY_CLI_USAGE : HY_CLI_RUNTIME; /* missing file: 1 */
            goto done;
        }
    }

    /* Every thread started from here on inherits the blocked set; only signal_main takes
     * these signals, synchronously. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGINT);
    sigaddset(&sc.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
    sc.srv = srv;
    if (pthread_create(&sig_thread, NULL, signal_main, &sc) != 0) {
        hy_cli_error(CMD, "cannot start the signal thread");
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    sig_running = 1;

    if (hy_server_start(srv) != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    if (o.port_file && hy_server_port(srv) > 0 &&
        write_port_file(o.port_file, hy_server_port(srv)) != 0) {
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    hy_server_wait(srv);

done:
    hy_server_stop(srv); /* drains; a later signal only repeats the stop request */
    if (sig_running) {
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    hy_server_free(srv);
    for (int i = 0; i < o.n_models; i++) {
        free(o.models[i].name);
        free(o.models[i].path);
    }
    free(o.model_dirs);
    free(o.registry_dir);
    free(o.allow_hosts);
    free(o.allow_origins);
    free(o.admin_token);
    if (rc == HY_CLI_OK && srv) fprintf(stderr, "hotyolo serve: stopped\n");
    return rc;
}
