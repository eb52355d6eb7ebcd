/* hotyolo server internals, shared by the files of src/server/:
 *   server.c  lifecycle: params, start (load, bind), stop (drain), MHD setup
 *   queue.c   bounded job queue + inference worker threads
 *   cache.c   served models: load, warm, swap (reference counted), evict, keep warm
 *   routes.c  HTTP handlers
 *   metrics.c histograms, counters, Prometheus text exposition; text buffer
 *   page.c    the HTML page served at GET /
 *
 * Locking: cache.mu guards every hy__mentry field and hy__mver.refs; queue.mu guards the
 * queue and job states; metrics.mu guards the request series. Never hold two of them at
 * once, and never call into the model (load, detect) while holding one. */
#ifndef HY_SERVER_IMPL_H
#define HY_SERVER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <microhttpd.h>

#include "core/core.h"
#include "hotyolo/server.h"

// --- libmicrohttpd, opened at run time (mhd.c) ------------------------------------------

#define HY_MHD_SYMBOLS(X)                                                                         \
    X(start_daemon, MHD_start_daemon)                                                             \
    X(stop_daemon, MHD_stop_daemon)                                                               \
    X(quiesce_daemon, MHD_quiesce_daemon)                                                         \
    X(get_daemon_info, MHD_get_daemon_info)                                                       \
    X(queue_response, MHD_queue_response)                                                         \
    X(create_response_from_buffer_with_free_callback,                                             \
      MHD_create_response_from_buffer_with_free_callback)                                         \
    X(destroy_response, MHD_destroy_response)                                                     \
    X(add_response_header, MHD_add_response_header)                                               \
    X(lookup_connection_value, MHD_lookup_connection_value)                                       \
    X(get_connection_values_n, MHD_get_connection_values_n)                                       \
    X(create_post_processor, MHD_create_post_processor)                                           \
    X(post_process, MHD_post_process)                                                             \
    X(destroy_post_processor, MHD_destroy_post_processor)                                       \
    X(add_connection, MHD_add_connection)                                                         \
    X(get_connection_info, MHD_get_connection_info)                                               \
    X(get_connection_values, MHD_get_connection_values)

typedef struct hy__mhd_api {
#define HY_MHD_FIELD(field, name) __typeof__(&name) field;
    HY_MHD_SYMBOLS(HY_MHD_FIELD)
#undef HY_MHD_FIELD
} hy__mhd_api;
extern hy__mhd_api hy__mhd;
/* Opens the library once per process; HY_ERR_UNSUPPORTED naming it when it is missing. */
hy_status hy__mhd_load(void);

#ifndef HY_MHD_NO_MAP /* the server code calls MHD_* as usual */
#define MHD_start_daemon (*hy__mhd.start_daemon)
#define MHD_stop_daemon (*hy__mhd.stop_daemon)
#define MHD_quiesce_daemon (*hy__mhd.quiesce_daemon)
#define MHD_get_daemon_info (*hy__mhd.get_daemon_info)
#define MHD_queue_response (*hy__mhd.queue_response)
#define MHD_create_response_from_buffer_with_free_callback                                        \
    (*hy__mhd.create_response_from_buffer_with_free_callback)
#define MHD_destroy_response (*hy__mhd.destroy_response)
#define MHD_add_response_header (*hy__mhd.add_response_header)
#define MHD_lookup_connection_value (*hy__mhd.lookup_connection_value)
#define MHD_get_connection_values_n (*hy__mhd.get_connection_values_n)
#define MHD_create_post_processor (*hy__mhd.create_post_processor)
#define MHD_post_process (*hy__mhd.post_process)
#define MHD_destroy_post_processor (*hy__mhd.destroy_post_processor)
#define MHD_add_connection (*hy__mhd.add_connection)
#define MHD_get_connection_info (*hy__mhd.get_connection_info)
#define MHD_get_connection_values (*hy__mhd.get_connection_values)
#endif

#define HY_SERVER_NAME_MAX 64 /* model name buffer, NUL included */
#define HY_SERVER_VERSION_LEN 12 /* hex digits of the weights file's sha256 */
#define HY__DIGEST_MAX 72        /* "sha256:" + 64 hex digits + NUL */

/* One registry version (registry:REF models, watch.c); version 0 = none. */
typedef struct hy__regver {
    char name[HY_SERVER_NAME_MAX];
    int version;
    char digest[HY__DIGEST_MAX]; /* "sha256:<64 lowercase hex>" */
} hy__regver;

// --- text buffer (metrics.c) -----------------------------------------------------------

/* Growable NUL-terminated text; on allocation failure `failed` is set and appends stop. */
typedef struct hy__sbuf {
    char *p;
    size_t len, cap;
    int failed;
} hy__sbuf;
void hy__sbuf_put(hy__sbuf *b, const char *s, size_t n);
void hy__sbuf_printf(hy__sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the text over (hy__free it), NULL after a failure; b is left empty. */
char *hy__sbuf_take(hy__sbuf *b, size_t *len);
void hy__sbuf_free(hy__sbuf *b);

// --- metrics (metrics.c) ---------------------------------------------------------------

#define HY__HISTO_MAX 16
/* Prometheus histogram: per-bucket counts (not cumulative) plus +Inf; seconds. */
typedef struct hy__histo {
    const double *le; /* upper bounds, ascending, n of them */
    int n;
    uint64_t bucket[HY__HISTO_MAX + 1];
    double sum;
    uint64_t count;
} hy__histo;
void hy__histo_init_inference(hy__histo *h); /* buckets for 5 ms .. 2 s */
void hy__histo_observe(hy__histo *h, double seconds);

typedef enum hy__reject {
    HY__REJ_QUEUE_FULL,     /* 503: the worker queue is full */
    HY__REJ_TIMEOUT,        /* 504 */
    HY__REJ_BODY_TOO_LARGE, /* 413 */
    HY__REJ_BAD_REQUEST,    /* 400: bad parameter, not an image, wrong tensor */
    HY__REJ_NOT_FOUND,      /* 404: unknown model or route */
    HY__REJ_METHOD,         /* 405 */
    HY__REJ_UNAVAILABLE,    /* 503: model not loaded / loading / failed, server draining */
    HY__REJ_INTERNAL,       /* 500 */
    HY__REJ_FORBIDDEN,      /* 403: foreign Host or Origin, load path outside the model dirs */
    HY__REJ_UNAUTHORIZED,   /* 401: admin endpoint without the bearer token */
    HY__REJ_MEDIA_TYPE,     /* 415: state-changing request whose body is not JSON */
    HY__REJ_TOO_MANY_MODELS,/* 409: --max-models names already served */
    HY__REJ_COUNT
} hy__reject;

typedef struct hy__req_series hy__req_series;
typedef struct hy__metrics {
    pthread_mutex_t mu;
    hy__req_series *series; /* (n) request-duration histograms by (model, code) */
    int n, cap;
    uint64_t rejects[HY__REJ_COUNT];
} hy__metrics;
/* gpus: list the GPUs' memory in /metrics (probes the NVIDIA driver once per process; only
 * when the models may run on one: --device cuda[:N] or auto). */
void hy__metrics_init(hy__metrics *m, int gpus);
void hy__metrics_free(hy__metrics *m);
/* model: a served model's name, or "" for requests not about one. */
void hy__metrics_request(hy__metrics *m, const char *model, int code, double seconds);
void hy__metrics_reject(hy__metrics *m, hy__reject why);
/* Drops the request series of a model that is no longer served. */
void hy__metrics_forget(hy__metrics *m, const char *model);
/* Process resident set size in bytes (/proc/self/statm), 0 if unknown. */
size_t hy__rss_bytes(void);

struct hy_server;
/* The whole exposition (text format 0.0.4); hy__free'd text, NULL when out of memory. */
char *hy__metrics_render(struct hy_server *s, size_t *len);

// --- served models (cache.c) -----------------------------------------------------------

typedef enum hy__mstate {
    HY__M_UNLOADED, /* not loaded yet (lazy) or unloaded on request */
    HY__M_LOADING,
    HY__M_WARMING,
    HY__M_READY,
    HY__M_FAILED,
    HY__M_EVICTED,
} hy__mstate;
const char *hy__mstate_name(hy__mstate st); /* "unloaded", "loading", ... */

typedef struct hy__mentry hy__mentry;

/* A version's context for one worker: worker i runs on ctx[i] of every version. */
typedef struct hy__vctx {
    hy_context *ctx;
    int threads;
    int claimed;          /* warm-up: prepared by a warm job (hy__queue_warm) */
    double used_ms;       /* monotonic ms of its last run start (idle re-warm); cache.mu */
    uint64_t inferences;  /* its engine stats after its last run, requests only; cache.mu */
    int cold_events;
    uint64_t base_inferences; /* n_inferences when ready (the request-path warm-up's) */
} hy__vctx;

/* One loaded version of a model: the weights once (model), one context per worker over
 * them. Freed when its last reference goes: the entry holds one while it is current, every
 * request using it holds one. */
typedef struct hy__mver {
    hy__mentry *entry;
    hy_model *model;
    hy__vctx *ctx;         /* (n_ctx) */
    int n_ctx;
    char *path;
    char version[HY_SERVER_VERSION_LEN + 1];
    size_t memory;         /* bytes, estimate: RSS growth of load + contexts */
    size_t weights_bytes;  /* RSS growth of the model load (weights, once) */
    size_t ctx_bytes;      /* RSS growth per context (arena, scratch, threads), mean */
    int refs;              /* guarded by cache.mu */
} hy__mver;

/* A served name. Reference counted (users): whoever holds a pointer from hy__cache_find /
 * first / next / add, and every version of it, holds one. A name added by a load request
 * is unlinked (gone from listings and lookups) when its load fails or it is unloaded, and
 * freed with its last reference. Fields guarded by cache.mu. */
struct hy__mentry {
    char name[HY_SERVER_NAME_MAX];
    int users;              /* references (see above) */
    int configured;         /* added before start (command line): never unlinked */
    char *config_path;      /* configured: the path given then (its folder may be loaded
                               from), NULL otherwise; never changes */
    int unlinked;           /* no longer in the list; freed when users drops to 0 */
    char *path;             /* weights file of the current (or next) version */
    int pinned;
    int unloaded_by_request; /* explicit unload: not lazily reloaded */
    hy__mstate state;
    char *error;            /* last load failure, or NULL */
    hy__mver *cur;          /* version serving now, NULL unless ready */
    int busy;               /* a load/swap of this entry is running */
    char version[HY_SERVER_VERSION_LEN + 1]; /* last loaded, "" if never */
    size_t memory;          /* of cur, bytes */
    int nc;                 /* classes of the last loaded version, 0 = unknown */
    size_t out_dims[2];     /* its raw output (d0, d1) at the first --imgsz; 0 = unknown */
    char format[16];        /* of the last loaded version ("pt", "safetensors", ...) */
    double load_ms, warmup_ms;
    double first_request_ms;  /* latency of the first request after ready; < 0 = none yet */
    int first_pending;
    double ready_unix;      /* wall clock (s) when it last became ready; 0 = never */
    double last_used_ms;    /* monotonic ms of the last request start (or ready) */
    double last_used_unix;  /* wall clock (s); 0 = never used */
    uint64_t served, rewarms_idle, rewarms_periodic, reloads, evictions, failures;
    int slow_streak;        /* consecutive inferences over the timeout */
    int reload_wanted;      /* watchdog: the keeper thread reloads it */
    hy__histo infer;        /* inference duration, seconds */
    /* registry:REF models (watch.c) */
    char *source;           /* the reference as given ("registry:m@production"); NULL: a path */
    hy__regver reg_path;    /* the version `path` holds: a load checks the file's sha256 */
    hy__regver reg_cur;     /* the version serving */
    hy__regver reg_refused; /* the last version refused, with why (reg_refused_why) */
    hy__regver reg_seen;    /* what the reference named at the last poll (-1: did not
                               resolve) */
    char *reg_refused_why;
    double reg_refused_unix;
    uint64_t reg_swaps, reg_refusals;
    hy__mentry *next;
};

typedef struct hy__cache {
    struct hy_server *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* an entry finished loading / changed state */
    pthread_mutex_t load_mu;/* one load at a time: memory is measured as the RSS delta */
    hy__mentry *head, *tail;
    int n;
    /* keeper thread: periodic re-warm and watchdog reloads */
    pthread_t keeper;
    int keeper_running, keeper_stop;
    pthread_mutex_t keeper_mu;
    pthread_cond_t keeper_cv;
} hy__cache;

void hy__cache_init(hy__cache *c, struct hy_server *s);
/* Frees every entry and version (no request may hold one any more). */
void hy__cache_free(hy__cache *c);
/* Adds a name (validated by the caller). HY_ERR_INVALID_ARG when it exists. */
hy_status hy__cache_add(hy__cache *c, const char *name, const char *path, int pinned,
                        hy__mentry **out);
/* Each returns a referenced entry (NULL when none); hy__cache_put drops it. next drops the
 * reference to e. Before start, add also checks that path is a readable file. */
hy__mentry *hy__cache_find(hy__cache *c, const char *name); /* NULL when unknown */
hy__mentry *hy__cache_first(hy__cache *c);
hy__mentry *hy__cache_next(hy__cache *c, hy__mentry *e);
void hy__cache_put(hy__cache *c, hy__mentry *e);
/* Unlinks e when it was added by a request and has no serving version (failed load or
 * unload): its name, listings and metric series go away. 1 when unlinked. */
int hy__cache_forget(hy__cache *c, hy__mentry *e);
/* A reference to the serving version; loads it first when lazy loading applies (the caller
 * waits). HY_ERR_BUSY (reason in hy_last_error) when it cannot serve now. */
hy_status hy__cache_acquire(hy__cache *c, hy__mentry *e, hy__mver **out);
void hy__cache_release(hy__cache *c, hy__mver *v);
/* Loads, plans and warms `path` (NULL = the entry's path) and swaps it in; the old version
 * is freed when its last request finishes. On failure the old version keeps serving. */
hy_status hy__cache_load(hy__cache *c, hy__mentry *e, const char *path);
/* Drops the serving version; the name stays known (state "unloaded"). */
void hy__cache_unload(hy__cache *c, hy__mentry *e);
/* A registry reference now names `want`, whose blob is `path`: a loaded model swaps to it
 * (the file's sha256 checked first: a mismatch or a failed load is refused, recorded in
 * reg_refused, and the current version keeps serving); one not loaded is pointed at it. */
hy_status hy__cache_load_registry(hy__cache *c, hy__mentry *e, const char *path,
                                  const hy__regver *want);
/* Keep warm (worker side): the context worker `worker` runs v on, re-warmed first when it
 * has been idle too long; marks the start of a run. */
hy_context *hy__cache_before_run(hy__cache *c, hy__mver *v, int worker);
/* Records a finished run on worker's context: counts, inference histogram (run_ms: worker
 * time), first latency, engine stats, watchdog (forward_ms: the forward pass only, so a slow
 * decode is not a hung model; < 0 = the run failed before its forward pass). */
void hy__cache_after_run(hy__cache *c, hy__mver *v, int worker, double run_ms,
                         double forward_ms, double total_ms);
hy_status hy__cache_keeper_start(hy__cache *c);
void hy__cache_keeper_stop(hy__cache *c);

// --- job queue and workers (queue.c) ---------------------------------------------------

typedef enum hy__job_kind {
    HY__JOB_DETECT,
    HY__JOB_FORWARD,
    HY__JOB_WARM /* a new version's prepare + request-path warm-up, one per worker
                    (hy__queue_warm) */
} hy__job_kind;

/* Rendezvous of the warm jobs: each waits until every worker has taken one. A job prepares
 * its worker's context (ctx[worker]; another unclaimed one if that was taken). */
typedef struct hy__warm_sync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, n;
    hy__vctx *ctx;                  /* (n) the version's contexts */
    const hy_prepare_params *prep;  /* shapes to plan + warm-up passes */
    const uint8_t *jpg;             /* synthetic JPEG for the request path; NULL = none */
    size_t len;
} hy__warm_sync;
typedef enum hy__job_state {
    HY__JOB_QUEUED,
    HY__JOB_RUNNING,
    HY__JOB_DONE,
    HY__JOB_ABANDONED /* the waiter timed out: whoever holds the job frees it */
} hy__job_state;

/* One inference. Owns its inputs, outputs and the model reference; freed by the waiter once
 * done, or by the worker when the waiter gave up (timeout). */
typedef struct hy__job {
    hy__job_kind kind;
    hy__mver *ver;
    hy__warm_sync *warm_sync; /* warm: the version being prepared (not served yet) */
    uint8_t *image;         /* detect: encoded JPEG/PNG bytes (image_len) */
    size_t image_len;
    hy_detect_params dp;
    int *classes;           /* detect: dp.classes, owned (the job may outlive its request) */
    float *x;               /* forward: (1, 3, h, w) */
    int h, w;
    float *out;             /* forward: (4 + nc, A) */
    size_t out_len;
    hy_result *res;         /* detect result */
    hy_status st;
    char err[512];
    double t_queued, t_start, t_end; /* monotonic ms */
    hy__job_state state;
    pthread_cond_t cv;
    struct hy__job *next;
} hy__job;

typedef struct hy__queue {
    struct hy_server *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* workers: a job arrived / stop */
    hy__job *head, *tail;
    int n_queued, n_running, max_queued;
    int stop;
    pthread_t *threads;
    struct hy__worker_arg {
        struct hy__queue *q;
        int index;          /* worker i runs on ctx[i] of every version */
    } *args;                /* (n_threads) each worker thread's argument */
    int n_threads;
    /* Inference slots: passes (and prepares, re-warms) that may run at once, so that the
     * workers' contexts, each with --threads threads, never oversubscribe the cores
     * (max(1, cores / threads)); 0 before the queue starts (no limit). A worker decodes its
     * image before it takes a slot, so decodes overlap other workers' passes. */
    pthread_mutex_t slot_mu;
    pthread_cond_t slot_cv;
    int slots, slots_free;
} hy__queue;
void hy__slot_acquire(hy__queue *q);
void hy__slot_release(hy__queue *q);

hy_status hy__queue_start(hy__queue *q, struct hy_server *s, int workers, int max_queued);
/* Workers finish what is queued, then exit; joined. Idempotent. */
void hy__queue_stop(hy__queue *q);
hy_status hy__job_new(hy__job_kind kind, hy__job **out);
void hy__job_free(struct hy_server *s, hy__job *j); /* releases the model reference too */
/* HY_ERR_BUSY when the queue is full or stopping (the caller still owns j). */
hy_status hy__queue_submit(hy__queue *q, hy__job *j);
/* Waits until j is done (returns 1; the caller frees j) or until deadline_ms (monotonic;
 * <= 0 = no limit): returns 0 and j is given up (do not touch it again). */
int hy__queue_wait(hy__queue *q, hy__job *j, double deadline_ms);
void hy__queue_counts(hy__queue *q, int *queued, int *running);
/* On every worker thread at once, each taking one warm job (a rendezvous makes them
 * distinct): prepares that worker's context (w->prep) and runs the request path (decode +
 * detect of w->jpg, twice): a worker's first request otherwise pays its malloc arena's
 * growth and first decode. Bypasses max_queue; waits for all of them. Every context of
 * w->ctx is prepared once on return (HY_OK). */
hy_status hy__queue_warm(hy__queue *q, hy__warm_sync *w);

// --- server (server.c) -----------------------------------------------------------------

struct hy_server {
    hy_server_params p;
    char host[64];
    char hostname[256];     /* the machine's name, read once at create: an allowed Host */
    hy_shape shapes[8];     /* prepared per model: squares + common rect shapes */
    int n_shapes;
    hy__cache cache;
    hy__queue queue;
    hy__metrics metrics;
    struct MHD_Daemon *mhd;
    struct hy__gate *gate;  /* listening socket, request-head checks, connection limits */
    int port;
    int started, stopped, queue_running;
    atomic_int draining;    /* stop requested: ready = 503 */
    atomic_long in_flight;  /* HTTP requests being handled */
    atomic_llong body_bytes; /* request bodies buffered (+ infer parse estimate), bytes,
                                bounded by p.max_inflight_bytes */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* stop requested */
    int stop_requested;
    pthread_t loader;       /* --listen-early: loads pinned models after binding */
    int loader_running;
    char *registry_dir;     /* p.registry_dir or HOTYOLO_REGISTRY, copied; NULL = none */
    struct hy__watch *watch; /* registry watcher thread (watch.c), NULL when not running */
    double t_start_ms;
    struct hy__notify *notify; /* sd_notify (notify.c), NULL when not asked for */
};

void hy__server_log(struct hy_server *s, hy_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 when every pinned model is ready and the server is not draining; else 0 and a reason. */
int hy__server_ready(struct hy_server *s, char *reason, size_t cap);
double hy__unix_now(void); /* wall clock, seconds */
/* Model names: 1..63 bytes of letters, digits, '.', '_', '-' (safe in URLs and labels). */
int hy__server_valid_name(const char *name);

// --- service manager notification (notify.c) --------------------------------------------

/* systemd's sd_notify through libsystemd opened at run time; every call is a no-op unless
 * NOTIFY_SOCKET was set at create and libsystemd loaded. */
typedef struct hy__notify hy__notify;
void hy__notify_init(struct hy_server *s);              /* at create: sets s->notify */
hy_status hy__notify_start(struct hy_server *s);        /* watchdog / readiness thread */
void hy__notify_listening(struct hy_server *s, int port); /* bound: READY=1 if ready now */
void hy__notify_check(struct hy_server *s);             /* readiness may have changed */
void hy__notify_status(struct hy_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hy__notify_stopping(struct hy_server *s);          /* STOPPING=1, once */
void hy__notify_stop(struct hy_server *s);              /* joins the thread */
void hy__notify_free(struct hy_server *s);

// --- registry references (watch.c) ------------------------------------------------------

/* Resolves "registry:REF" for hy_server_add_model: *path (hy__free) the blob, *ver. */
hy_status hy__registry_resolve(struct hy_server *s, const char *source, char **path,
                               hy__regver *ver);
/* Starts the thread that resolves every registry model's reference each registry_poll_s
 * and swaps in the version it names (nothing to do: HY_OK, no thread). */
hy_status hy__watch_start(struct hy_server *s);
void hy__watch_stop(struct hy_server *s); /* joins it; a swap in progress finishes first */

// --- connection gate (gate.c) ---------------------------------------------------------

/* The gate owns the listening socket: it accepts, reads each new connection's first request
 * head (header deadline, size caps), answers a malformed or over-limit head with the JSON
 * error itself, and hands the rest to MHD (MHD_add_connection) within the connection
 * limits: --max-connections, per client address, plus a reserve for probes and /metrics.
 * It also enforces body and keep-alive deadlines on the connections MHD serves. */
typedef struct hy__gate hy__gate;
#define HY__GATE_RESERVE 8 /* connections above max_connections for probes and /metrics */
/* Binds host:port and starts the gate thread; s->port is set. MHD must be started first
 * (with the hy__gate_* callbacks below). */
hy_status hy__gate_start(struct hy_server *s);
void hy__gate_quiesce(struct hy_server *s); /* closes the listening socket */
void hy__gate_stop(struct hy_server *s);    /* before MHD_stop_daemon: no more handovers */
void hy__gate_free(struct hy_server *s);    /* after MHD_stop_daemon */
/* MHD callbacks: the access handler and completion wrap hy__route_access/_completed. */
enum MHD_Result hy__gate_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls);
void hy__gate_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe);
void hy__gate_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                     enum MHD_ConnectionNotificationCode toe);

// --- HTTP (routes.c, page.c) -----------------------------------------------------------

enum MHD_Result hy__route_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls);
void hy__route_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe);
/* The page served at GET / (static text, len bytes). */
const char *hy__server_page_html(size_t *len);

// --- request validation: pure functions (no MHD, no server), fuzzable (routes.c) --------

/* Validates JSON syntax in one linear pass without allocating, and bounds what parsing it
 * can cost: at most max_values values (object keys, objects, arrays, strings, numbers,
 * literals), of which at most max_nodes objects, arrays, keys and strings (the costly ones
 * to json-c), nesting at most max_depth, numbers at most 64 characters, no \u0000. 0 ok;
 * -1 with err. */
int hy__json_precheck(const char *body, size_t len, size_t max_values, size_t max_nodes,
                      int max_depth, char *err, size_t cap);
/* What a KServe v2 infer body may hold when the largest served side is max_side: values
 * (3*S*S numbers + 256) and nodes (3*S row arrays + 256). */
size_t hy__v2_max_values(int max_side);
size_t hy__v2_max_nodes(int max_side);

/* A parsed KServe v2 infer request: input "images" (1, 3, h, w) FP32 in [0, 1]. */
typedef struct hy__v2_input {
    float *x;      /* (1, 3, h, w), hy__malloc'd */
    int h, w;
    char *id_json; /* the request's "id" as JSON text (hy__malloc'd), NULL when none */
    int binary_out; /* output0 asked as binary data (Triton's extension; binary_infer.c) */
} hy__v2_input;
/* Parses and validates an infer body (precheck, then JSON): H and W multiples of 32 in
 * [32, max_side], exactly 3*H*W numbers, each a finite float32 in [0, 1]. 0 ok (free with
 * hy__v2_input_free); -1 with err (a client error). */
int hy__v2_parse_infer(const char *body, size_t len, int max_side, hy__v2_input *out, char *err,
                       size_t cap);
void hy__v2_input_free(hy__v2_input *in);
/* The same with Triton's binary tensor data extension: body[0, header_len) is the JSON header
 * (header_len = len: no binary data); the rest must be exactly the binary_data_size bytes of
 * the inputs that give one (little-endian FP32), none with "data". Also reads which outputs
 * are asked as binary (outputs[].parameters.binary_data, parameters.binary_data_output). */
int hy__v2_parse_infer_ex(const char *body, size_t len, size_t header_len, int max_side,
                          hy__v2_input *out, char *err, size_t cap);
/* Inference-Header-Content-Length: decimal digits only, at most body_len. 0 ok; -1 with err. */
int hy__v2_header_length(const char *value, size_t body_len, size_t *out, char *err, size_t cap);
/* n little-endian FP32 values at p (any alignment) into x, each finite in [0, 1]; 0 ok, -1
 * with err naming the element. */
int hy__v2_binary_floats(const uint8_t *p, size_t n, float *x, char *err, size_t cap);
/* x (n floats) as little-endian bytes into out (4n bytes). */
void hy__v2_binary_put(const float *x, size_t n, uint8_t *out);

/* One query argument of a route whose accepted names are `allowed` (','-separated, "" =
 * none): 0 when the name is accepted and neither name nor value holds a NUL or control
 * byte; -1 with err naming it. */
int hy__query_arg_check(const char *allowed, const char *key, size_t key_len, const char *value,
                        size_t value_len, char *err, size_t cap);
/* "0,2,5" -> ids (at most cap, each in [0, max_id]); 0 ok, -1 with err. */
int hy__parse_classes(const char *s, int *ids, int cap, int max_id, int *n, char *err,
                      size_t errcap);
/* Host header (with or without ":port"): localhost, an IP literal, `hostname` (this
 * machine, may be NULL) or a name in allow (','-separated, may be NULL). 1 allowed. */
int hy__host_allowed(const char *host, const char *hostname, const char *allow);
/* Origin header vs the request's Host: same origin ("http://" + host) or in allow. */
int hy__origin_allowed(const char *origin, const char *host, const char *allow);
/* realpath(path) when it is a regular file inside one of dirs (':'-separated realpaths or
 * not), into resolved (PATH_MAX); 1 allowed, 0 not (nothing says whether the file exists). */
int hy__path_in_dirs(const char *path, const char *dirs, char *resolved, size_t cap);
/* Copies s into out (cap bytes, NUL-terminated), control bytes, '\' and bytes >= 0x7f
 * written as \xNN: a request's text cannot forge a log line. Returns out. */
char *hy__log_escape(const char *s, char *out, size_t cap);

#endif
