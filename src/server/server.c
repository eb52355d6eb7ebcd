/* Server lifecycle: parameters, start (load + warm pinned models, bind), readiness, stop
 * (drain), and the libmicrohttpd daemon.
 *
 * Threads: MHD's listener plus one thread per connection (so health checks and /metrics
 * never wait behind inference: each connection blocks only on its own job), the inference
 * workers (queue.c), the keeper (cache.c: periodic re-warm, watchdog) and, with
 * listen_early, a loader for the pinned models. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend_impl.h"
#include "server/server_impl.h"

#define DRAIN_GRACE_MS 100   /* connections accepted just before the stop get their request in */
#define DRAIN_EXTRA_MS 5000  /* drain limit beyond the request timeout */
#define CONNECTION_IDLE_S 60 /* MHD closes idle keep-alive connections after this */
/* MHD's memory per connection (head + read buffer): above the gate's head limit, so that a
 * keep-alive follow-up head over the limit reaches our JSON check instead of MHD's page. */
#define MHD_MEMORY_BYTES (64 * 1024)

// --- helpers ---------------------------------------------------------------------------

double hy__unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void hy__server_log(struct hy_server *s, hy_log_level lvl, const char *fmt, ...) {
    if (!s->p.log) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s->p.log(lvl, buf, s->p.log_user);
}

int hy__server_valid_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n >= HY_SERVER_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        if (!ok) return 0;
    }
    return 1;
}

// --- params ----------------------------------------------------------------------------

hy_server_params hy_server_default_params(void) {
    hy_server_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.imgsz[0] = 640;
    p.n_imgsz = 1;
    p.warmup_runs = 3;
    p.workers = 2;
    p.device = "cpu";
    p.max_queue = 64;
    p.timeout_ms = 30000;
    p.max_body = (size_t)32 << 20;
    p.lazy = 1;
    p.max_connections = 256;
    p.max_connections_per_ip = 32;
    p.header_timeout_ms = 5000;
    p.body_timeout_ms = 60000;
    p.send_timeout_ms = 60000;
    p.max_inflight_bytes = (size_t)512 << 20;
    p.max_pixels = 40000000;
    p.max_models = 64;
    p.registry_poll_s = 2;
    return p;
}

static hy_status check_params(const hy_server_params *p) {
    if (!p->host || !*p->host || strlen(p->host) >= 64)
        return hy__error(HY_ERR_INVALID_ARG, "host: a numeric IPv4 or IPv6 address is required");
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, p->host, addr) != 1 && inet_pton(AF_INET6, p->host, addr) != 1)
        return hy__error(HY_ERR_INVALID_ARG, "host: '%s' is not a numeric IPv4 or IPv6 address",
                         p->host);
    if (p->port < 0 || p->port > 65535)
        return hy__error(HY_ERR_INVALID_ARG, "port: %d is not in [0, 65535]", p->port);
    if (p->n_imgsz < 1 || p->n_imgsz > HY_SERVER_MAX_IMGSZ)
        return hy__error(HY_ERR_INVALID_ARG, "imgsz: between 1 and %d sizes", HY_SERVER_MAX_IMGSZ);
    for (int i = 0; i < p->n_imgsz; i++)
        if (p->imgsz[i] < 32 || p->imgsz[i] > 4096 || p->imgsz[i] % 32)
            return hy__error(HY_ERR_INVALID_ARG, "imgsz: %d is not a multiple of 32 in [32, 4096]",
                             p->imgsz[i]);
    if (p->warmup_runs < 0 || p->warmup_runs > 1000)
        return hy__error(HY_ERR_INVALID_ARG, "warmup_runs: %d is not in [0, 1000]", p->warmup_runs);
    if (p->n_threads < 0 || p->n_threads > 1024)
        return hy__error(HY_ERR_INVALID_ARG, "n_threads: %d is not in [0, 1024]", p->n_threads);
    if (p->workers < 1 || p->workers > 256)
        return hy__error(HY_ERR_INVALID_ARG, "workers: %d is not in [1, 256]", p->workers);
    hy__device_req dr;
    if (hy__device_parse(p->device, &dr)) /* NULL or "" = "cpu" */
        return hy__error_prefix(HY_ERR_INVALID_ARG, "device");
    if (p->max_queue < 1 || p->max_queue > 1000000)
        return hy__error(HY_ERR_INVALID_ARG, "max_queue: %d is not in [1, 1000000]", p->max_queue);
    if (p->timeout_ms < 0)
        return hy__error(HY_ERR_INVALID_ARG, "timeout_ms: %d is negative", p->timeout_ms);
    if (p->max_body < 1) return hy__error(HY_ERR_INVALID_ARG, "max_body: must be at least 1 byte");
    if (!(p->rewarm_idle_s >= 0) || !(p->rewarm_interval_s >= 0))
        return hy__error(HY_ERR_INVALID_ARG, "rewarm_idle_s / rewarm_interval_s: must be >= 0");
    if (p->max_pixels < 1 || p->max_models < 1 || p->max_models > 100000)
        return hy__error(HY_ERR_INVALID_ARG, "max_pixels / max_models: must be >= 1 (max_models "
                                             "<= 100000)");
    if (p->max_connections < 1 || p->max_connections > 100000)
        return hy__error(HY_ERR_INVALID_ARG, "max_connections: %d is not in [1, 100000]",
                         p->max_connections);
    if (p->max_connections_per_ip < 1 || p->max_connections_per_ip > 100000)
        return hy__error(HY_ERR_INVALID_ARG, "max_connections_per_ip: %d is not in [1, 100000]",
                         p->max_connections_per_ip);
    if (p->header_timeout_ms < 1 || p->header_timeout_ms > 3600000)
        return hy__error(HY_ERR_INVALID_ARG, "header_timeout_ms: %d is not in [1, 3600000]",
                         p->header_timeout_ms);
    if (p->body_timeout_ms < 1 || p->body_timeout_ms > 86400000)
        return hy__error(HY_ERR_INVALID_ARG, "body_timeout_ms: %d is not in [1, 86400000]",
                         p->body_timeout_ms);
    if (p->send_timeout_ms < 0 || p->send_timeout_ms > 86400000)
        return hy__error(HY_ERR_INVALID_ARG, "send_timeout_ms: %d is not in [0, 86400000]",
                         p->send_timeout_ms);
    if (p->max_inflight_bytes < 1)
        return hy__error(HY_ERR_INVALID_ARG, "max_inflight_bytes: must be at least 1 byte");
    if (!(p->registry_poll_s >= 0) || p->registry_poll_s > 86400)
        return hy__error(HY_ERR_INVALID_ARG, "registry_poll_s: %g is not in [0, 86400]",
                         p->registry_poll_s);
    if (p->admin_token && *p->admin_token && strlen(p->admin_token) < 8)
        return hy__error(HY_ERR_INVALID_ARG, "admin_token: shorter than 8 characters");
    return HY_OK;
}

/* Rect letterbox size of an image with aspect num:den (long side s): the short side
 * round(s * num / den) padded up to a multiple of 32, as Ultralytics' rect letterbox. */
static int rect_side(int s, int num, int den) {
    int v = (s * num + den / 2) / den;
    return (v + 31) / 32 * 32;
}

static void add_shape(hy_server *s, int w, int h) {
    for (int i = 0; i < s->n_shapes; i++)
        if (s->shapes[i].width == w && s->shapes[i].height == h) return;
    if (s->n_shapes < (int)HY_ARRAY_LEN(s->shapes)) s->shapes[s->n_shapes++] = (hy_shape){w, h};
}

/* Prepared shapes: each served size square, then for the first size the letterboxed sizes
 * of 4:3 and 16:9 photos, landscape and portrait (most camera images), up to 8. */
static void plan_shapes(hy_server *s) {
    for (int i = 0; i < s->p.n_imgsz; i++) add_shape(s, s->p.imgsz[i], s->p.imgsz[i]);
    for (int i = 0; i < s->p.n_imgsz; i++) {
        int sz = s->p.imgsz[i];
        add_shape(s, sz, rect_side(sz, 3, 4));
        add_shape(s, rect_side(sz, 3, 4), sz);
        add_shape(s, sz, rect_side(sz, 9, 16));
        add_shape(s, rect_side(sz, 9, 16), sz);
    }
}

// --- create / add ----------------------------------------------------------------------

hy_status hy_server_create(const hy_server_params *p, hy_server **out) {
    if (!out) return hy__error(HY_ERR_INVALID_ARG, "hy_server_create: out is required");
    hy_server_params pp = p ? *p : hy_server_default_params();
    hy_status st = check_params(&pp);
    if (st == HY_OK) st = hy__mhd_load();
    if (st != HY_OK) return st;
    hy_server *s = hy__calloc(1, sizeof *s);
    if (!s) return hy__error(HY_ERR_NOMEM, "out of memory (server)");
    s->p = pp;
    const char *rdir = pp.registry_dir ? pp.registry_dir : getenv("HOTYOLO_REGISTRY");
    if (rdir && *rdir && !(s->registry_dir = hy__strdup(rdir))) {
        hy__free(s);
        return hy__error(HY_ERR_NOMEM, "out of memory (server)");
    }
    s->p.registry_dir = s->registry_dir;
    snprintf(s->host, sizeof s->host, "%s", pp.host);
    s->p.host = s->host;
    if (gethostname(s->hostname, sizeof s->hostname - 1) != 0) s->hostname[0] = '\0';
    plan_shapes(s);
    hy__cache_init(&s->cache, s);
    hy__device_req dreq;
    hy__metrics_init(&s->metrics, !hy__device_parse(s->p.device, &dreq) && strcmp(dreq.kind, "cpu") != 0 &&
                                      strcmp(dreq.kind, "ref") != 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->draining, 0);
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->body_bytes, 0);
    s->t_start_ms = hy__now_ms();
    hy__notify_init(s); /* NOTIFY_SOCKET: systemd readiness + watchdog */
    *out = s;
    return HY_OK;
}

hy_status hy_server_add_model(hy_server *s, const char *name, const char *path, int pinned) {
    if (!s || !name || !path || !*path)
        return hy__error(HY_ERR_INVALID_ARG,
                         "hy_server_add_model: server, name and path are required");
    if (s->started)
        return hy__error(HY_ERR_BUSY, "hy_server_add_model: the server is already started");
    if (!hy__server_valid_name(name))
        return hy__error(HY_ERR_INVALID_ARG,
                         "model name '%s': use 1 to %d letters, digits, '.', '_' or '-'", name,
                         HY_SERVER_NAME_MAX - 1);
    if (strncmp(path, "registry:", 9) != 0)
        return hy__cache_add(&s->cache, name, path, pinned != 0, NULL);
    /* a registry reference: served from its blob, which must match its digest */
    char *blob = NULL, *source = hy__strdup(path);
    hy__regver v;
    hy__mentry *e = NULL;
    hy_status st = source ? hy__registry_resolve(s, path, &blob, &v)
                          : hy__error(HY_ERR_NOMEM, "out of memory");
    if (st == HY_OK) st = hy__cache_add(&s->cache, name, blob, pinned != 0, &e);
    if (st != HY_OK) {
        if (st == HY_ERR_NOT_FOUND && !strstr(hy_last_error(), name))
            hy__error_prefix(st, "model '%s'", name);
        hy__free(blob);
        hy__free(source);
        return st;
    }
    pthread_mutex_lock(&s->cache.mu);
    e->source = source;
    e->reg_path = e->reg_seen = v;
    /* the blob folder is no folder load requests may read from */
    hy__free(e->config_path);
    e->config_path = NULL;
    pthread_mutex_unlock(&s->cache.mu);
    hy__cache_put(&s->cache, e);
    hy__server_log(s, HY_LOG_INFO, "model '%s': %s is %s@%d (%s)", name, path, v.name, v.version,
                   v.digest);
    hy__free(blob);
    return HY_OK;
}

int hy_server_port(const hy_server *s) { return s ? s->port : 0; }

// --- readiness -------------------------------------------------------------------------

int hy__server_ready(struct hy_server *s, char *reason, size_t cap) {
    if (atomic_load(&s->draining)) {
        snprintf(reason, cap, "server is shutting down");
        return 0;
    }
    int ready = 1;
    pthread_mutex_lock(&s->cache.mu);
    for (hy__mentry *e = s->cache.head; e && ready; e = e->next) {
        if (!e->pinned || e->state == HY__M_READY) continue; /* unloaded pinned: not ready */
        ready = 0;
        if (e->state == HY__M_FAILED)
            snprintf(reason, cap, "model '%s' failed to load: %s", e->name,
                     e->error ? e->error : "");
        else
            snprintf(reason, cap, "model '%s' is %s", e->name,
                     e->state != HY__M_UNLOADED ? hy__mstate_name(e->state)
                     : e->unloaded_by_request   ? "unloaded on request"
                                                : "waiting to load");
    }
    pthread_mutex_unlock(&s->cache.mu);
    return ready;
}

// --- HTTP daemon -----------------------------------------------------------------------

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    hy_server *s = cls;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    hy__server_log(s, HY_LOG_WARN, "http: %s", buf);
}

/* MHD serves the connections the gate (gate.c) hands it: it has no listening socket. */
static hy_status bind_http(hy_server *s) {
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
    errno = 0;
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, hy__gate_access, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        s, /* first: covers the others */
        MHD_OPTION_NOTIFY_COMPLETED, hy__gate_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        hy__gate_notify, s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)(s->p.max_connections + HY__GATE_RESERVE), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)CONNECTION_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)MHD_MEMORY_BYTES, MHD_OPTION_END);
    if (!s->mhd)
        return hy__error(HY_ERR_IO, "cannot start libmicrohttpd: %s",
                         errno ? strerror(errno) : "it refused to start");
    hy_status st = hy__gate_start(s);
    if (st != HY_OK) return st;
    hy__server_log(s, HY_LOG_INFO, "listening on http://%s%s%s:%d/",
                   strchr(s->host, ':') ? "[" : "", s->host, strchr(s->host, ':') ? "]" : "",
                   s->port);
    hy__notify_listening(s, s->port); /* READY=1 now unless models are still loading */
    return HY_OK;
}

// --- start -----------------------------------------------------------------------------

static int stop_requested(hy_server *s) {
    pthread_mutex_lock(&s->mu);
    int r = s->stop_requested;
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* Loads every pinned model in order; stops at the first failure unless keep_going. */
static hy_status load_pinned(hy_server *s, int keep_going) {
    hy_status first = HY_OK;
    for (hy__mentry *e = hy__cache_first(&s->cache); e; e = hy__cache_next(&s->cache, e)) {
        if (!e->pinned) continue; /* pinned is set at add time and never changes */
        if (stop_requested(s)) break;
        hy__notify_status(s, "loading and warming pinned model '%s'", e->name);
        hy_status st = hy__cache_load(&s->cache, e, NULL);
        if (st != HY_OK)
            hy__notify_status(s, "pinned model '%s' failed to load: %s", e->name, hy_last_error());
        if (st != HY_OK && first == HY_OK) first = st;
        if (st != HY_OK && !keep_going) return st;
    }
    return first;
}

static void *loader_main(void *arg) {
    hy_server *s = arg;
    double t0 = hy__now_ms();
    if (load_pinned(s, 1) == HY_OK && !stop_requested(s))
        hy__server_log(s, HY_LOG_INFO,
                       "ready: every pinned model is loaded and warm (%.1f ms after listening)",
                       hy__now_ms() - t0);
    hy__notify_check(s); /* READY=1 */
    return NULL;
}

hy_status hy_server_start(hy_server *s) {
    if (!s) return hy__error(HY_ERR_INVALID_ARG, "hy_server_start: server is required");
    if (s->started) return hy__error(HY_ERR_BUSY, "hy_server_start: already started");
    s->started = 1;
    hy_status st = hy__queue_start(&s->queue, s, s->p.workers, s->p.max_queue);
    if (st != HY_OK) return st;
    s->queue_running = 1;
    st = hy__cache_keeper_start(&s->cache);
    if (st != HY_OK) return st;
    st = hy__watch_start(s);
    if (st == HY_OK) st = hy__notify_start(s);
    if (st != HY_OK) return st;
    if (s->p.listen_early) {
        st = bind_http(s);
        if (st != HY_OK) return st;
        if (pthread_create(&s->loader, NULL, loader_main, s) != 0)
            return hy__error(HY_ERR_NOMEM, "cannot start the model loader thread");
        s->loader_running = 1;
        return HY_OK;
    }
    st = load_pinned(s, 0);
    if (st != HY_OK) return st;
    if (stop_requested(s)) return HY_OK;
    return bind_http(s);
}

// --- stop ------------------------------------------------------------------------------

void hy_server_request_stop(hy_server *s) {
    if (!s) return;
    atomic_store(&s->draining, 1);
    hy__notify_stopping(s);
    pthread_mutex_lock(&s->mu);
    s->stop_requested = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void hy_server_wait(hy_server *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    while (!s->stop_requested) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void hy_server_stop(hy_server *s) {
    if (!s || s->stopped) return;
    s->stopped = 1;
    hy_server_request_stop(s);
    if (s->loader_running) { /* a load in progress cannot be interrupted */
        pthread_join(s->loader, NULL);
        s->loader_running = 0;
    }
    hy__watch_stop(s); /* no swap starts while draining (one in progress finishes) */
    if (s->mhd) {
        /* Stop accepting: close the listening socket, keep the open connections. */
        hy__gate_quiesce(s);
        double t0 = hy__now_ms();
        double limit = (s->p.timeout_ms > 0 ? s->p.timeout_ms : 30000) + DRAIN_EXTRA_MS;
        sleep_ms(DRAIN_GRACE_MS);
        long left;
        while ((left = atomic_load(&s->in_flight)) > 0 && hy__now_ms() - t0 < limit) sleep_ms(10);
        hy__server_log(s, left ? HY_LOG_WARN : HY_LOG_INFO, "stopping: %s after %.0f ms",
                       left ? "requests still in flight" : "drained every request in flight",
                       hy__now_ms() - t0);
        hy__gate_stop(s);        /* no more handovers */
        MHD_stop_daemon(s->mhd); /* joins the connection threads */
        s->mhd = NULL;
    }
    hy__gate_free(s);
    hy__cache_keeper_stop(&s->cache);
    hy__notify_stop(s); /* it reads the queue: before the queue goes */
    if (s->queue_running) {
        hy__queue_stop(&s->queue);
        s->queue_running = 0;
    }
}

void hy_server_free(hy_server *s) {
    if (!s) return;
    hy_server_stop(s);
    hy__notify_free(s);
    hy__cache_free(&s->cache);
    hy__metrics_free(&s->metrics);
    hy__free(s->registry_dir);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    hy__free(s);
}
