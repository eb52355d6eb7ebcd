/* Served models: load, plan + warm, atomic swap with reference counting, LRU eviction under
 * a memory budget, keep-warm (idle and periodic re-warm) and the watchdog reload.
 *
 * A swap loads and warms the new version beside the old one, then replaces the entry's
 * current pointer under the lock. Requests hold a reference to the version they started
 * on; the last reference to go frees it. */
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/image.h"
#include "core/sha256.h"
#include "server/server_impl.h"

#define KEEPER_TICK_MS 100 /* how often the keeper looks at watchdog and periodic work */
#define WATCHDOG_STRIKES 3 /* consecutive inferences over the timeout before a reload */

static const char *const state_names[] = {"unloaded", "loading", "warming",
                                          "ready",    "failed",  "evicted"};

const char *hy__mstate_name(hy__mstate st) {
    return (unsigned)st < HY_ARRAY_LEN(state_names) ? state_names[st] : "unknown";
}

/* Threads of each worker's context: --threads (0 = online cores). Passes run at once only as
 * far as the cores allow (the queue's inference slots: max(1, cores / threads)), so with the
 * defaults one pass at a time has every core (the latency of one request is that of one
 * context) while the other worker decodes the next image; --threads 1 --workers <cores> runs
 * one 1-thread pass per core instead (throughput). */
static int context_threads(const hy_server *s) {
    int t = s->p.n_threads > 0 ? s->p.n_threads : hy__cpu_count();
    return t < 1 ? 1 : t > 256 ? 256 : t;
}

/* Prepares every context of a new version (plans, arena, warm-up passes) and warms the
 * request path. The warm-up passes run the network on tensors; a request also decodes a
 * JPEG, letterboxes it and runs NMS, and the first decode in a process pays libjpeg's first
 * use and the page faults of its pixel buffer (+1.3-2.4 ms on bus.jpg: the server's first
 * request measured 1.05-1.20x the steady median without this). On every worker thread, with
 * its own context, two requests on a synthetic JPEG twice the size of the largest prepared
 * shape, so it letterboxes to that shape exactly (no cold event; glibc serves the second
 * decode from the heap and keeps it, so decodes up to that size fault nothing afterwards:
 * 1280x1280, 4.9 MB of pixels, at imgsz 640). */
static hy_status warm_contexts(hy_server *s, hy__vctx *ctx, int n) {
    hy_prepare_params pp = hy_prepare_default_params();
    pp.shapes = s->shapes;
    pp.n_shapes = s->n_shapes;
    pp.warmup_runs = s->p.warmup_runs;
    uint8_t *jpg = NULL;
    size_t len = 0;
    hy_status st = HY_OK;
    if (s->p.warmup_runs > 0) {
        int W = 0, H = 0;
        for (int i = 0; i < s->n_shapes; i++)
            if ((long)s->shapes[i].width * s->shapes[i].height > (long)W * H) {
                W = s->shapes[i].width;
                H = s->shapes[i].height;
            }
        W *= 2;
        H *= 2;
        hy_image *img = NULL;
        st = hy__image_create(W, H, &img);
        if (st) return st;
        for (int y = 0; y < H; y++) /* smooth gradients with texture: a realistic JPEG */
            for (int x = 0; x < W; x++) {
                uint8_t *p = img->data + ((size_t)y * W + x) * 3;
                p[0] = (uint8_t)(x * 255 / W);
                p[1] = (uint8_t)(y * 255 / H);
                p[2] = (uint8_t)((x ^ y) & 0xff);
            }
        st = hy__image_encode_jpeg(img, 90, &jpg, &len);
        hy_image_free(img);
        if (st) return st;
    }
    /* on the worker threads that will serve the requests, all at once (their malloc arenas,
     * their first decode); inline when no worker runs */
    if (s->queue_running && s->queue.n_threads == n) {
        hy__warm_sync w = {.n = n, .ctx = ctx, .prep = &pp, .jpg = jpg, .len = len};
        st = hy__queue_warm(&s->queue, &w);
    } else {
        for (int i = 0; i < n && st == HY_OK; i++) {
            st = hy_model_prepare(ctx[i].ctx, &pp);
            for (int k = 0; jpg && k < 2 && st == HY_OK; k++) {
                hy_result *r = NULL;
                st = hy_detect_encoded(ctx[i].ctx, jpg, len, NULL, &r);
                hy_result_free(r);
            }
        }
        if (st) st = hy__error_prefix(st, "warm-up");
    }
    free(jpg);
    return st;
}

/* One context per worker over m (prepared by warm_contexts); *out (n = workers). */
static hy_status contexts_create(hy_server *s, const hy_model *m, hy__vctx **out) {
    int n = s->p.workers;
    hy__vctx *ctx = hy__calloc((size_t)n, sizeof *ctx);
    if (!ctx) return hy__error(HY_ERR_NOMEM, "out of memory (contexts)");
    hy_status st = HY_OK;
    for (int i = 0; i < n && st == HY_OK; i++) {
        hy_context_params cp = hy_context_default_params();
        cp.n_threads = ctx[i].threads = context_threads(s);
        st = hy_context_create(m, &cp, &ctx[i].ctx);
    }
    if (st != HY_OK) {
        for (int i = 0; i < n; i++) hy_context_free(ctx[i].ctx);
        hy__free(ctx);
        return st;
    }
    *out = ctx;
    return HY_OK;
}

static void contexts_free(hy__vctx *ctx, int n) {
    for (int i = 0; ctx && i < n; i++) hy_context_free(ctx[i].ctx);
    hy__free(ctx);
}

// --- versions --------------------------------------------------------------------------

static void entry_free(hy__mentry *e) {
    hy__free(e->path);
    hy__free(e->config_path);
    hy__free(e->error);
    hy__free(e->source);
    hy__free(e->reg_refused_why);
    hy__free(e);
}

void hy__cache_put(hy__cache *c, hy__mentry *e) {
    if (!e) return;
    pthread_mutex_lock(&c->mu);
    int dead = --e->users == 0 && e->unlinked;
    pthread_mutex_unlock(&c->mu);
    if (dead) entry_free(e);
}

/* Frees v and drops its reference to its entry (c NULL: the cache is being freed). */
static void ver_free(hy__cache *c, hy__mver *v) {
    if (!v) return;
    hy__mentry *e = v->entry;
    contexts_free(v->ctx, v->n_ctx); /* before their model */
    hy_model_free(v->model);
    hy__free(v->path);
    hy__free(v);
    /* Give the freed arena and weights back to the system now, so that RSS returns to its
     * level before the load (glibc otherwise keeps large freed heap blocks). */
    malloc_trim(0);
    if (c) hy__cache_put(c, e);
}

/* Drops one reference (cache.mu held); returns the version when it must be freed. */
static hy__mver *ver_unref_locked(hy__mver *v) { return v && --v->refs == 0 ? v : NULL; }

void hy__cache_release(hy__cache *c, hy__mver *v) {
    if (!v) return;
    pthread_mutex_lock(&c->mu);
    hy__mver *dead = ver_unref_locked(v);
    pthread_mutex_unlock(&c->mu);
    ver_free(c, dead);
}

// --- entries ---------------------------------------------------------------------------

void hy__cache_init(hy__cache *c, struct hy_server *s) {
    memset(c, 0, sizeof *c);
    c->srv = s;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_mutex_init(&c->load_mu, NULL);
    pthread_mutex_init(&c->keeper_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->keeper_cv, &ca);
    pthread_condattr_destroy(&ca);
}

void hy__cache_free(hy__cache *c) {
    hy__mentry *e = c->head;
    while (e) {
        hy__mentry *next = e->next;
        if (e->cur) {
            e->cur->refs = 1; /* nothing else may hold it now */
            ver_free(NULL, ver_unref_locked(e->cur));
        }
        entry_free(e);
        e = next;
    }
    pthread_cond_destroy(&c->keeper_cv);
    pthread_mutex_destroy(&c->keeper_mu);
    pthread_mutex_destroy(&c->load_mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
}

hy_status hy__cache_add(hy__cache *c, const char *name, const char *path, int pinned,
                        hy__mentry **out) {
    int configured = !c->srv->started;
    struct stat sb;
    /* lazy models are checked at start: readiness means every configured model can serve
     * (pinned ones are loaded at start) */
    if (configured && !pinned &&
        (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || access(path, R_OK) != 0))
        return hy__error(HY_ERR_NOT_FOUND, "model '%s': '%s' is not a readable file", name, path);
    hy__mentry *e = hy__calloc(1, sizeof *e);
    char *p = hy__strdup(path);
    if (e && configured) e->config_path = hy__strdup(path);
    if (!e || !p || (configured && !e->config_path)) {
        if (e) hy__free(e->config_path);
        hy__free(e);
        hy__free(p);
        return hy__error(HY_ERR_NOMEM, "out of memory (model '%s')", name);
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    e->path = p;
    e->pinned = pinned;
    e->configured = configured;
    e->users = out ? 1 : 0;
    e->state = HY__M_UNLOADED;
    e->first_request_ms = -1;
    hy__histo_init_inference(&e->infer);
    pthread_mutex_lock(&c->mu);
    for (hy__mentry *it = c->head; it; it = it->next) {
        if (strcmp(it->name, name) != 0) continue;
        pthread_mutex_unlock(&c->mu);
        entry_free(e); /* and p, its path */
        return hy__error(HY_ERR_INVALID_ARG, "model '%s' is already served", name);
    }
    int max = c->srv->p.max_models;
    if (c->n >= max) {
        pthread_mutex_unlock(&c->mu);
        entry_free(e); /* and p, its path */
        return hy__error(HY_ERR_BUSY, "the server already serves %d models (--max-models %d)",
                         max, max);
    }
    if (c->tail)
        c->tail->next = e;
    else
        c->head = e;
    c->tail = e;
    c->n++;
    pthread_mutex_unlock(&c->mu);
    if (out) *out = e;
    return HY_OK;
}

hy__mentry *hy__cache_find(hy__cache *c, const char *name) {
    pthread_mutex_lock(&c->mu);
    hy__mentry *e = c->head;
    while (e && strcmp(e->name, name) != 0) e = e->next;
    if (e) e->users++;
    pthread_mutex_unlock(&c->mu);
    return e;
}

hy__mentry *hy__cache_first(hy__cache *c) {
    pthread_mutex_lock(&c->mu);
    hy__mentry *e = c->head;
    if (e) e->users++;
    pthread_mutex_unlock(&c->mu);
    return e;
}

hy__mentry *hy__cache_next(hy__cache *c, hy__mentry *e) {
    pthread_mutex_lock(&c->mu);
    /* an unlinked entry keeps its next pointer, which may be gone: start over then (the
     * callers' passes are idempotent) */
    hy__mentry *n = e->unlinked ? c->head : e->next;
    if (n) n->users++;
    pthread_mutex_unlock(&c->mu);
    hy__cache_put(c, e);
    return n;
}

int hy__cache_forget(hy__cache *c, hy__mentry *e) {
    char name[HY_SERVER_NAME_MAX];
    pthread_mutex_lock(&c->mu);
    int drop = !e->configured && !e->cur && !e->busy && !e->unlinked;
    if (drop) {
        hy__mentry *prev = NULL;
        for (hy__mentry *it = c->head; it && it != e; it = it->next) prev = it;
        if (prev)
            prev->next = e->next;
        else
            c->head = e->next;
        if (c->tail == e) c->tail = prev;
        c->n--;
        e->unlinked = 1;
        memcpy(name, e->name, sizeof name);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (drop) hy__metrics_forget(&c->srv->metrics, name);
    return drop;
}

// --- memory budget ---------------------------------------------------------------------

/* Evicts least recently used unpinned models (never `keep`, never one being loaded) until
 * the loaded models plus `extra` bytes fit the budget, or nothing more can go. */
static void enforce_budget(hy__cache *c, hy__mentry *keep, size_t extra) {
    hy_server *s = c->srv;
    size_t budget = s->p.memory_budget;
    if (!budget) return;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        size_t total = extra;
        hy__mentry *victim = NULL;
        for (hy__mentry *e = c->head; e; e = e->next) {
            if (!e->cur) continue;
            total += e->memory;
            if (!e->pinned && e != keep && !e->busy &&
                (!victim || e->last_used_ms < victim->last_used_ms))
                victim = e;
        }
        if (total <= budget || !victim) {
            pthread_mutex_unlock(&c->mu);
            if (total > budget)
                hy__server_log(
                    s, HY_LOG_WARN,
                    "memory budget: %.1f MB needed, budget %.1f MB, nothing left to evict",
                    (double)total / 1e6, (double)budget / 1e6);
            return;
        }
        hy__mver *old = victim->cur;
        victim->cur = NULL;
        victim->state = HY__M_EVICTED;
        victim->evictions++;
        size_t freed = victim->memory;
        char name[HY_SERVER_NAME_MAX];
        memcpy(name, victim->name, sizeof name);
        hy__mver *dead = ver_unref_locked(old);
        pthread_mutex_unlock(&c->mu);
        ver_free(c, dead);
        hy__server_log(
            s, HY_LOG_INFO,
            "model '%s' evicted (least recently used, %.1f MB) to stay within the %.1f MB budget",
            name, (double)freed / 1e6, (double)budget / 1e6);
    }
}

// --- load / swap -----------------------------------------------------------------------

/* The caller has set e->busy; this clears it. want: a registry version (path_arg is its
 * blob); NULL: path_arg from a request, or NULL for the entry's own path (and, for a
 * registry model, the version it holds). A registry version's file is hashed before it is
 * parsed and must match its digest. */
static hy_status load_owned(hy__cache *c, hy__mentry *e, const char *path_arg,
                            const hy__regver *want) {
    hy_server *s = c->srv;
    hy_model *m = NULL;
    hy__vctx *ctx = NULL; /* (workers) */
    hy__mver *v = NULL;
    char hex[HY_SHA256_HEX_LEN + 1];
    char err[1024] = "";
    hy_status st = HY_OK;

    char logpath[512];
    pthread_mutex_lock(&c->mu);
    char *path = hy__strdup(path_arg ? path_arg : e->path);
    int swap = e->cur != NULL;
    hy__regver expect = {0};
    if (want)
        expect = *want;
    else if (!path_arg)
        expect = e->reg_path; /* version 0 for a plain file */
    int checked = 0;      /* hex holds the file's sha256 */
    int mismatch = 0;
    if (e->unlinked) { /* forgotten while this load waited for its turn */
        e->busy = 0;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        hy__free(path);
        return hy__error(HY_ERR_NOT_FOUND, "model '%s' is no longer served", e->name);
    }
    if (!swap) e->state = HY__M_LOADING;
    size_t estimate = e->memory;
    /* a path from a request (resolved and checked against the model folders) is opened
     * without following links and must still be that file once open */
    int strict = (path_arg != NULL && !want) || !e->configured;
    pthread_mutex_unlock(&c->mu);
    int fd = -1;
    char fdpath[64];
    if (!path) {
        st = hy__error(HY_ERR_NOMEM, "out of memory");
        snprintf(err, sizeof err, "%s", hy_last_error());
        goto done;
    }
    /* Load and hash through one descriptor: the file checked is the file loaded. */
    fd = open(path, O_RDONLY | O_CLOEXEC | (strict ? O_NOFOLLOW : 0));
    struct stat fst;
    if (fd < 0 || fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
        st = hy__error(HY_ERR_IO, "cannot open as a regular file%s",
                       strict ? " (links are not followed)" : "");
        snprintf(err, sizeof err, "%s: %s", path, hy_last_error());
        goto done;
    }
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    if (strict) {
        char now[PATH_MAX];
        ssize_t nl = readlink(fdpath, now, sizeof now - 1);
        if (nl < 0 || (now[nl] = '\0', strcmp(now, path) != 0)) {
            st = hy__error(HY_ERR_IO, "the file changed place while it was opened");
            snprintf(err, sizeof err, "%s: %s", path, hy_last_error());
            goto done;
        }
    }
    if (expect.version > 0) { /* a registry blob: its content must be what was recorded */
        st = hy__sha256_file(fdpath, hex);
        if (st == HY_OK && (strncmp(expect.digest, "sha256:", 7) != 0 ||
                            strcmp(expect.digest + 7, hex) != 0)) {
            mismatch = 1;
            st = hy__error(HY_ERR_FORMAT,
                           "sha256 mismatch: %s@%d's blob holds sha256:%s, the registry "
                           "records %s",
                           expect.name, expect.version, hex, expect.digest);
        }
        if (st != HY_OK) {
            snprintf(err, sizeof err, "%s: %s", path, hy_last_error());
            goto done;
        }
        checked = 1;
    }
    if (!estimate) estimate = fst.st_size > 0 ? (size_t)fst.st_size : 0;
    enforce_budget(c, e, estimate);
    hy__server_log(s, HY_LOG_INFO, "model '%s': %s %s", e->name,
                   swap ? "loading new version from" : "loading",
                   hy__log_escape(path, logpath, sizeof logpath));

    pthread_mutex_lock(&c->load_mu);
    size_t rss0 = hy__rss_bytes();
    double t0 = hy__now_ms();
    hy_model_params mp = hy_model_default_params();
    mp.device = s->p.device;
    mp.no_fallback = s->p.no_fallback;
    mp.n_threads = s->p.n_threads; /* packing; each context: context_threads */
    mp.imgsz = s->p.imgsz[0];
    st = hy_model_load(fdpath, &mp, &m);
    if (st == HY_OK && hy_model_device_fallback(m)[0]) /* the library's own log is off */
        hy__server_log(s, strcmp(hy_model_device_requested(m), "auto") ? HY_LOG_WARN : HY_LOG_INFO,
                       "model '%s': device %s: %s; running on %s", e->name,
                       hy_model_device_requested(m), hy_model_device_fallback(m),
                       hy_model_device(m));
    double t1 = hy__now_ms();
    malloc_trim(0); /* the loader's freed buffers: rss_w - rss0 is then the weights */
    size_t rss_w = hy__rss_bytes();
    if (st == HY_OK) {
        pthread_mutex_lock(&c->mu);
        if (!e->cur) e->state = HY__M_WARMING;
        pthread_mutex_unlock(&c->mu);
        st = contexts_create(s, m, &ctx);
        if (st == HY_OK) st = warm_contexts(s, ctx, s->p.workers);
    }
    double t2 = hy__now_ms();
    size_t rss1 = hy__rss_bytes();
    pthread_mutex_unlock(&c->load_mu);
    if (st == HY_OK && !checked) st = hy__sha256_file(fdpath, hex);
    close(fd);
    fd = -1;
    if (st == HY_OK) {
        v = hy__calloc(1, sizeof *v);
        if (!v) st = hy__error(HY_ERR_NOMEM, "out of memory");
    }
    if (st != HY_OK) {
        const char *why = hy_last_error();
        if (strstr(why, path))
            snprintf(err, sizeof err, "%s", why);
        else
            snprintf(err, sizeof err, "%s: %s", path, why);
        goto done;
    }
    v->entry = e;
    v->model = m;
    m = NULL;
    v->ctx = ctx;
    v->n_ctx = s->p.workers;
    ctx = NULL;
    for (int i = 0; i < v->n_ctx; i++) { /* count requests only, not the warm-up's */
        hy_engine_stats es;
        if (hy_model_engine_stats(v->ctx[i].ctx, &es) == HY_OK)
            v->ctx[i].base_inferences = es.n_inferences;
    }
    v->path = path;
    path = NULL;
    memcpy(v->version, hex, HY_SERVER_VERSION_LEN);
    v->version[HY_SERVER_VERSION_LEN] = '\0';
    size_t fsize = fst.st_size > 0 ? (size_t)fst.st_size : 0;
    v->memory = rss1 > rss0 && rss1 - rss0 > fsize ? rss1 - rss0 : fsize;
    v->weights_bytes = rss_w > rss0 ? rss_w - rss0 : 0;
    v->ctx_bytes = rss1 > rss_w ? (rss1 - rss_w) / (size_t)v->n_ctx : 0;
    v->refs = 1; /* the entry's */

    pthread_mutex_lock(&c->mu);
    e->users++; /* the version's */
    hy__mver *old = e->cur;
    e->cur = v;
    char *npath = hy__strdup(v->path);
    if (npath) {
        hy__free(e->path);
        e->path = npath;
    }
    memcpy(e->version, v->version, sizeof e->version);
    e->memory = v->memory;
    e->nc = hy_model_num_classes(v->model);
    if (hy_model_output_shape(v->model, c->srv->p.imgsz[0], c->srv->p.imgsz[0], e->out_dims) != HY_OK)
        e->out_dims[0] = e->out_dims[1] = 0;
    snprintf(e->format, sizeof e->format, "%s", hy_model_format(v->model));
    e->load_ms = t1 - t0;
    e->warmup_ms = t2 - t1;
    e->first_request_ms = -1;
    e->first_pending = 1;
    e->slow_streak = 0;
    e->unloaded_by_request = 0;
    hy__free(e->error);
    e->error = NULL;
    if (old) e->reloads++;
    if (expect.version > 0) {
        if (old && want && strcmp(e->reg_cur.digest, expect.digest) != 0) e->reg_swaps++;
        e->reg_cur = expect;
        e->reg_path = expect;
    } else if (path_arg) { /* a file from a request: no longer the registry's version */
        memset(&e->reg_cur, 0, sizeof e->reg_cur);
        memset(&e->reg_path, 0, sizeof e->reg_path);
    }
    e->last_used_ms = hy__now_ms(); /* idle time counts from ready */
    for (int i = 0; i < v->n_ctx; i++) v->ctx[i].used_ms = e->last_used_ms;
    e->ready_unix = hy__unix_now();
    e->state = HY__M_READY;
    e->busy = 0;
    /* for the log line: once mu is released, a concurrent unload may free v */
    char vtext[HY_SERVER_VERSION_LEN + 1], ftext[sizeof e->format];
    memcpy(vtext, v->version, sizeof vtext);
    memcpy(ftext, e->format, sizeof ftext);
    double vmem = (double)v->memory, wmem = (double)v->weights_bytes,
           cmem = (double)v->ctx_bytes;
    int nctx = v->n_ctx, tmin = v->ctx[0].threads, tmax = v->ctx[0].threads;
    for (int i = 1; i < nctx; i++) {
        tmin = HY_MIN(tmin, v->ctx[i].threads);
        tmax = HY_MAX(tmax, v->ctx[i].threads);
    }
    char thr[32];
    if (tmin == tmax)
        snprintf(thr, sizeof thr, "%d thread%s", tmin, tmin == 1 ? "" : "s");
    else
        snprintf(thr, sizeof thr, "%d-%d threads", tmin, tmax);
    v = NULL;
    hy__mver *dead = ver_unref_locked(old);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    ver_free(c, dead);
    hy__server_log(s, HY_LOG_INFO,
                   "model '%s' ready: version %s, %s, load %.1f ms, plan + warm-up %.1f ms (%d "
                   "shapes x %d runs; %d worker context%s, %s each), "
                   "memory %.1f MB (weights %.1f MB once + %.1f MB per worker)%s",
                   e->name, vtext, ftext, t1 - t0, t2 - t1, s->n_shapes, s->p.warmup_runs, nctx,
                   nctx == 1 ? "" : "s", thr, vmem / 1e6, wmem / 1e6, cmem / 1e6,
                   old ? " (swapped; the old version is freed after its last request)" : "");
    enforce_budget(c, e, 0);
    return HY_OK;

done:;
    /* What HTTP clients see (/v1/models, readiness, 503s): the status only. A loader's text
     * may quote the file's bytes; it goes to the server log (escaped) and the caller. */
    char pub[256];
    const char *dev_why = st == HY_ERR_BACKEND ? strstr(err, "(no fallback to cpu") : NULL;
    if (mismatch) /* digests are no secret: the reason a registry version was refused */
        snprintf(pub, sizeof pub, "%s", hy_last_error());
    else if (dev_why && (dev_why = strstr(err, "device "))) /* no file bytes in it */
        snprintf(pub, sizeof pub, "%s", dev_why);
    else
        snprintf(pub, sizeof pub,
                 "the weights file does not load (%s; details in the server log)",
                 hy_status_str(st));
    contexts_free(ctx, s->p.workers); /* before their model */
    hy_model_free(m);
    hy__free(path);
    if (fd >= 0) close(fd);
    pthread_mutex_lock(&c->mu);
    hy__free(e->error);
    e->error = hy__strdup(pub);
    e->failures++;
    if (expect.version > 0) {
        e->reg_refused = expect;
        hy__free(e->reg_refused_why);
        e->reg_refused_why = hy__strdup(pub);
        e->reg_refused_unix = hy__unix_now();
        e->reg_refusals++;
    }
    if (!e->cur) e->state = HY__M_FAILED;
    e->busy = 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    char logerr[1024];
    if (expect.version > 0)
        hy__server_log(s, HY_LOG_ERROR, "model '%s': registry version %s@%d (%s) refused%s: %s",
                       e->name, expect.name, expect.version, expect.digest,
                       swap ? ", the current version keeps serving" : "",
                       hy__log_escape(err, logerr, sizeof logerr));
    else
        hy__server_log(s, HY_LOG_ERROR, "model '%s': load failed: %s", e->name,
                       hy__log_escape(err, logerr, sizeof logerr));
    return hy__error(st, "%s", err);
}

hy_status hy__cache_load(hy__cache *c, hy__mentry *e, const char *path) {
    pthread_mutex_lock(&c->mu);
    while (e->busy) pthread_cond_wait(&c->cv, &c->mu);
    e->busy = 1;
    pthread_mutex_unlock(&c->mu);
    return load_owned(c, e, path, NULL);
}

hy_status hy__cache_load_registry(hy__cache *c, hy__mentry *e, const char *path,
                                  const hy__regver *want) {
    pthread_mutex_lock(&c->mu);
    while (e->busy) pthread_cond_wait(&c->cv, &c->mu);
    if (!e->cur) { /* not loaded (lazy, evicted, unloaded): its next load takes this one */
        char *p = hy__strdup(path);
        if (p) {
            hy__free(e->path);
            e->path = p;
            e->reg_path = *want;
        }
        pthread_mutex_unlock(&c->mu);
        if (!p) return hy__error(HY_ERR_NOMEM, "out of memory");
        hy__server_log(c->srv, HY_LOG_INFO, "model '%s': registry version %s@%d (%s) is next "
                       "(loads when used)", e->name, want->name, want->version, want->digest);
        return HY_OK;
    }
    e->busy = 1;
    pthread_mutex_unlock(&c->mu);
    return load_owned(c, e, path, want);
}

hy_status hy__cache_acquire(hy__cache *c, hy__mentry *e, hy__mver **out) {
    hy_server *s = c->srv;
    int tried = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (e->cur) { /* serving (also while a new version is being loaded beside it) */
            e->cur->refs++;
            *out = e->cur;
            pthread_mutex_unlock(&c->mu);
            return HY_OK;
        }
        hy_status st = HY_OK;
        if (e->unlinked)
            st = hy__error(HY_ERR_BUSY, "model '%s' is no longer served", e->name);
        else if (e->unloaded_by_request)
            st = hy__error(HY_ERR_BUSY,
                           "model '%s' is unloaded (POST /v2/repository/models/%s/load loads it)",
                           e->name, e->name);
        else if (tried || e->state == HY__M_FAILED)
            st = tried || !s->p.lazy || e->pinned
                     ? hy__error(HY_ERR_BUSY, "model '%s' failed to load: %s", e->name,
                                 e->error ? e->error : "unknown error")
                     : HY_OK; /* lazy: try again */
        else if (e->pinned)
            st = hy__error(HY_ERR_BUSY, "model '%s' is %s, not ready yet", e->name,
                           e->busy ? hy__mstate_name(e->state) : "waiting to load");
        else if (!s->p.lazy)
            st = hy__error(HY_ERR_BUSY, "model '%s' is %s (lazy loading is off)", e->name,
                           e->busy ? hy__mstate_name(e->state) : "not loaded");
        if (st != HY_OK) {
            pthread_mutex_unlock(&c->mu);
            return st;
        }
        if (e->busy) { /* another request is loading it: wait for that load */
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        e->busy = 1;
        pthread_mutex_unlock(&c->mu);
        load_owned(c, e, NULL, NULL); /* outcome seen on the next turn */
        tried = 1;
        pthread_mutex_lock(&c->mu);
    }
}

void hy__cache_unload(hy__cache *c, hy__mentry *e) {
    pthread_mutex_lock(&c->mu);
    while (e->busy) pthread_cond_wait(&c->cv, &c->mu);
    hy__mver *old = e->cur;
    e->cur = NULL;
    e->state = HY__M_UNLOADED;
    e->unloaded_by_request = 1;
    hy__mver *dead = ver_unref_locked(old);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    ver_free(c, dead);
    hy__server_log(c->srv, HY_LOG_INFO, "model '%s' unloaded%s", e->name,
                   old && !dead ? " (freed after its last request)" : "");
}

// --- keep warm + watchdog --------------------------------------------------------------

hy_context *hy__cache_before_run(hy__cache *c, hy__mver *v, int worker) {
    hy__mentry *e = v->entry;
    hy__vctx *x = &v->ctx[worker % v->n_ctx];
    double idle_ms = c->srv->p.rewarm_idle_s * 1e3;
    double now = hy__now_ms();
    pthread_mutex_lock(&c->mu);
    /* each context is re-warmed by its own worker when it has sat idle (another worker may
     * have served the model meanwhile) */
    double idle = now - x->used_ms;
    int rewarm = idle_ms > 0 && x->used_ms > 0 && idle > idle_ms;
    x->used_ms = now;
    e->last_used_ms = now;
    e->last_used_unix = hy__unix_now();
    pthread_mutex_unlock(&c->mu);
    if (!rewarm) return x->ctx;
    double t0 = hy__now_ms();
    hy_status st = hy_model_rewarm(x->ctx);
    double t1 = hy__now_ms();
    pthread_mutex_lock(&c->mu);
    e->rewarms_idle++;
    pthread_mutex_unlock(&c->mu);
    if (st == HY_OK)
        hy__server_log(c->srv, HY_LOG_INFO,
                       "model '%s': worker %d idle for %.1f s, re-warmed in %.1f ms before this "
                       "request",
                       e->name, worker, idle / 1e3, t1 - t0);
    else
        hy__server_log(c->srv, HY_LOG_WARN, "model '%s': re-warm failed: %s", e->name,
                       hy_last_error());
    return x->ctx;
}

void hy__cache_after_run(hy__cache *c, hy__mver *v, int worker, double run_ms,
                         double forward_ms, double total_ms) {
    hy__mentry *e = v->entry;
    hy__vctx *x = &v->ctx[worker % v->n_ctx];
    hy_engine_stats es;
    int have_stats = hy_model_engine_stats(x->ctx, &es) == HY_OK; /* this worker's context */
    int timeout_ms = c->srv->p.timeout_ms;
    int reload = 0;
    pthread_mutex_lock(&c->mu);
    if (have_stats) {
        x->inferences = es.n_inferences - x->base_inferences;
        x->cold_events = es.cold_events;
    }
    e->served++;
    hy__histo_observe(&e->infer, run_ms / 1e3);
    if (e->first_pending && v == e->cur) {
        e->first_request_ms = total_ms;
        e->first_pending = 0;
    }
    if (timeout_ms > 0 && forward_ms > timeout_ms) {
        if (++e->slow_streak >= WATCHDOG_STRIKES && v == e->cur && !e->reload_wanted) {
            e->reload_wanted = 1;
            e->slow_streak = 0;
            reload = 1;
        }
    } else {
        e->slow_streak = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (reload) {
        hy__server_log(
            c->srv, HY_LOG_WARN,
            "watchdog: model '%s': %d inferences in a row took longer than the %d ms timeout "
            "(last %.1f ms); reloading it",
            e->name, WATCHDOG_STRIKES, timeout_ms, forward_ms);
        pthread_mutex_lock(&c->keeper_mu);
        pthread_cond_signal(&c->keeper_cv);
        pthread_mutex_unlock(&c->keeper_mu);
    }
}

/* Current version of e with a reference, or NULL when not loaded (never loads). */
static hy__mver *peek(hy__cache *c, hy__mentry *e) {
    pthread_mutex_lock(&c->mu);
    hy__mver *v = e->cur;
    if (v) v->refs++;
    pthread_mutex_unlock(&c->mu);
    return v;
}

static void keeper_pass(hy__cache *c, int periodic) {
    for (hy__mentry *e = hy__cache_first(c); e; e = hy__cache_next(c, e)) {
        pthread_mutex_lock(&c->mu);
        int reload = e->reload_wanted && e->cur; /* not if unloaded or evicted meanwhile */
        e->reload_wanted = 0;
        pthread_mutex_unlock(&c->mu);
        if (reload) hy__cache_load(c, e, NULL); /* logged by the load */
        if (!periodic) continue;
        hy__mver *v = peek(c, e);
        if (!v) continue;
        double t0 = hy__now_ms();
        hy_status st = HY_OK; /* every worker's context; each waits at most for one pass */
        for (int i = 0; i < v->n_ctx && st == HY_OK; i++) {
            hy__slot_acquire(&c->srv->queue);
            st = hy_model_rewarm(v->ctx[i].ctx);
            hy__slot_release(&c->srv->queue);
        }
        double t1 = hy__now_ms();
        pthread_mutex_lock(&c->mu);
        e->rewarms_periodic++;
        pthread_mutex_unlock(&c->mu);
        if (st != HY_OK)
            hy__server_log(c->srv, HY_LOG_WARN, "model '%s': periodic re-warm failed: %s", e->name,
                           hy_last_error());
        else
            hy__server_log(c->srv, HY_LOG_DEBUG, "model '%s': periodic re-warm, %.1f ms", e->name,
                           t1 - t0);
        hy__cache_release(c, v);
    }
}

static void *keeper_main(void *arg) {
    hy__cache *c = arg;
    double interval_ms = c->srv->p.rewarm_interval_s * 1e3;
    double next = hy__now_ms() + interval_ms;
    pthread_mutex_lock(&c->keeper_mu);
    while (!c->keeper_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += KEEPER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->keeper_cv, &c->keeper_mu, &ts);
        if (c->keeper_stop) break;
        pthread_mutex_unlock(&c->keeper_mu);
        double now = hy__now_ms();
        int periodic = interval_ms > 0 && now >= next;
        if (periodic) next = now + interval_ms;
        keeper_pass(c, periodic);
        pthread_mutex_lock(&c->keeper_mu);
    }
    pthread_mutex_unlock(&c->keeper_mu);
    return NULL;
}

hy_status hy__cache_keeper_start(hy__cache *c) {
    c->keeper_stop = 0;
    if (pthread_create(&c->keeper, NULL, keeper_main, c) != 0)
        return hy__error(HY_ERR_NOMEM, "cannot start the keep-warm thread");
    c->keeper_running = 1;
    return HY_OK;
}

void hy__cache_keeper_stop(hy__cache *c) {
    if (!c->keeper_running) return;
    pthread_mutex_lock(&c->keeper_mu);
    c->keeper_stop = 1;
    pthread_cond_signal(&c->keeper_cv);
    pthread_mutex_unlock(&c->keeper_mu);
    pthread_join(c->keeper, NULL);
    c->keeper_running = 0;
}
