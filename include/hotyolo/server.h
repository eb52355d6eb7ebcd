/*
 * hotyolo/server.h — an HTTP inference server for hotyolo models (libmicrohttpd).
 *
 * Endpoints (see docs/http-api.md): POST /v1/detect, GET /v1/models, GET /health/{live,ready},
 * GET /metrics (Prometheus), and a KServe v2 subset: /v2/health/{live,ready},
 * /v2/models/{m}[/ready], POST /v2/models/{m}/infer, POST /v2/repository/index,
 * POST /v2/repository/models/{m}/{load,unload}.
 *
 * Models are named. Pinned models are loaded, planned and warmed before the server reports
 * ready and are never evicted; the others load on first use and are evicted least recently
 * used when the memory budget would be exceeded. Loading a served model again swaps it in
 * atomically: requests in flight finish on the version they started with.
 *
 * Detection runs on a bounded worker queue, so accepting connections and answering health
 * checks and /metrics never wait for inference.
 *
 * Example
 *   hy_server_params p = hy_server_default_params();
 *   p.port = 8080;
 *   hy_server *s;
 *   if (hy_server_create(&p, &s) != HY_OK) return 1;
 *   hy_server_add_model(s, "yolov8n", "yolov8n.pt", 1);
 *   if (hy_server_start(s) == HY_OK) hy_server_wait(s);  // until hy_server_request_stop
 *   hy_server_free(s);                                   // drains, then frees
 */
#ifndef HOTYOLO_SERVER_H
#define HOTYOLO_SERVER_H

#include <stddef.h>

#include "hotyolo.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hy_server hy_server;

#define HY_SERVER_MAX_IMGSZ 8 /* served inference sizes */

typedef struct hy_server_params {
    const char *host;        /* numeric IPv4 or IPv6 address to bind; default "127.0.0.1" */
    int port;                /* TCP port; 0 = an ephemeral port (see hy_server_port) */
    int imgsz[HY_SERVER_MAX_IMGSZ]; /* served inference sizes (multiples of 32); the first is
                                       the default; default { 640 } */
    int n_imgsz;
    int warmup_runs;         /* warm-up passes per prepared shape; default 3, 0 = none */
    int n_threads;           /* threads of each worker's context; 0 = online cores. At most
                                max(1, cores / n_threads) forward passes run at once */
    int workers;             /* inference worker threads; default 2. Each runs on its own
                                context (arena, scratch, threads) of every loaded model, over
                                that model's one copy of the weights */
    const char *device;      /* where the models run: "cpu" (default), "ref" (plain-C reference
                                kernels; slow), "cuda[:N]" or "auto" (hotyolo/device.h: a GPU
                                that cannot be used falls back to cpu, shown in /metrics);
                                not copied */
    int no_fallback;         /* 1: a model whose GPU cannot be used fails to load instead */
    int max_queue;           /* requests waiting for a worker before 503; default 64 */
    int timeout_ms;          /* per-request limit (queue + inference) before 504; default
                                30000; 0 = none */
    size_t max_body;         /* request body limit in bytes before 413; default 32 MiB */
    size_t memory_budget;    /* bytes for all loaded models; 0 = unlimited */
    double rewarm_idle_s;    /* re-warm a model idle this long before its next request;
                                0 = off (default) */
    double rewarm_interval_s;/* re-warm every ready model this often; 0 = off (default) */
    int listen_early;        /* bind before the pinned models are ready (ready = 503 until
                                then); default 0: bind only once every pinned model is warm */
    int lazy;                /* load unpinned models on first use (default 1); 0 = 503 */
    int max_connections;     /* concurrent connections; default 256 (plus 8 reserved for
                                /health/... and /metrics) */
    int max_connections_per_ip; /* of those, from one client address; default 32 */
    int header_timeout_ms;   /* a request head must be complete this long after the
                                connection opened (absolute; slow bytes do not extend it)
                                before 408; default 5000 */
    int body_timeout_ms;     /* a request body must be complete this long after its head;
                                default 60000 */
    int send_timeout_ms;     /* a response must be taken by the client this long after it
                                is queued, else the connection is shut; default 60000,
                                0 = none */
    size_t max_inflight_bytes; /* request bodies buffered at once, all connections together
                                  (an infer body counts twice: its parse); over it 503 +
                                  Retry-After; default 512 MiB */
    /* Request limits and access control (docs/http-api.md "Security"). The strings are not
     * copied: they must stay valid until hy_server_free. */
    long long max_pixels;    /* decoded image width * height before 413; default 40000000 */
    int max_models;          /* served names, configured + loaded on request; default 64 */
    const char *model_dirs;  /* ':'-separated folders a load request may read weights from,
                                besides the folders of the models added before start; NULL */
    const char *allow_hosts; /* ','-separated extra Host names (besides localhost, IP
                                literals and this machine's hostname); NULL */
    const char *allow_origins; /* ','-separated extra Origins (e.g. "https://app.example");
                                  NULL: only the server's own origin */
    const char *admin_token; /* when set, repository load/unload need "Authorization: Bearer
                                <token>"; NULL = no token */
    /* Models given as "registry:REF" (hy_server_add_model; docs/registry.md "Serving and
     * rollout"). registry_dir: the registry folder (not copied); NULL = the HOTYOLO_REGISTRY
     * environment variable. registry_poll_s: how often each reference is resolved again;
     * when it names another version, that version's blob is checked against its sha256 and
     * swapped in (a mismatch is refused and the current version keeps serving). Default 2;
     * 0 = resolved once, at add. */
    const char *registry_dir;
    double registry_poll_s;
    /* One line per request (access log) and per error or lifecycle event. Called from
     * server threads, concurrently; NULL = silent. */
    hy_log_fn log;
    void *log_user;
} hy_server_params;

/* Defaults as documented above. */
HY_API hy_server_params hy_server_default_params(void);

/* Validates p and creates a stopped server; nothing is loaded or bound yet.
 * Errors: HY_ERR_INVALID_ARG naming the field, HY_ERR_NOMEM. Free with hy_server_free. */
HY_API hy_status hy_server_create(const hy_server_params *p, hy_server **out);

/* Declares a model served as `name` (letters, digits, '.', '_', '-'; at most 63 bytes) from
 * the weights file `path` (any format hy_model_load reads), or from "registry:REF" (a
 * reference of include/hotyolo/registry.h, resolved now in p.registry_dir and watched while
 * serving). pinned: loaded at start, never evicted. Only before hy_server_start. Errors:
 * HY_ERR_INVALID_ARG (bad or duplicate name, no registry folder), HY_ERR_BUSY (already
 * started, or max_models reached), HY_ERR_NOT_FOUND (an unpinned model's path is not a
 * readable file: checked now, so that it can load when used; a reference that names
 * nothing), the registry's error when it cannot be opened. */
HY_API hy_status hy_server_add_model(hy_server *s, const char *name, const char *path, int pinned);

/* Loads and warms the pinned models, then binds and serves; with listen_early it binds
 * first and loads in the background. Returns once the socket is bound (HY_OK), or when a
 * stop was requested during loading (HY_OK, nothing bound). Errors: a pinned model that
 * fails to load (its error), HY_ERR_IO when the address cannot be bound. */
HY_API hy_status hy_server_start(hy_server *s);

/* The bound TCP port (after hy_server_start), else 0. */
HY_API int hy_server_port(const hy_server *s);

/* Asks the server to stop: readiness turns 503 at once and hy_server_wait returns.
 * Thread-safe; not async-signal-safe (call it from a thread that sigwait()s). */
HY_API void hy_server_request_stop(hy_server *s);

/* Blocks until hy_server_request_stop is called. */
HY_API void hy_server_wait(hy_server *s);

/* Graceful stop: stops accepting connections, lets requests in flight finish (bounded by
 * the request timeout), stops the workers and background threads. Idempotent. */
HY_API void hy_server_stop(hy_server *s);

/* Stops (as hy_server_stop) and frees everything. NULL is a no-op. */
HY_API void hy_server_free(hy_server *s);

#ifdef __cplusplus
}
#endif
#endif /* HOTYOLO_SERVER_H */
