/* Models served from the registry ("registry:REF"): the reference resolved at add, and a
 * watcher thread that resolves it again every registry_poll_s. When it names another
 * version (an alias moved, a project re-bound, a new latest), the new blob is checked
 * against its digest and swapped in through the cache's hot-swap path (cache.c): requests
 * in flight finish on the version they started with, a refused version leaves the current
 * one serving. docs/registry.md, "Serving and rollout". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "hotyolo/registry.h"
#include "server/server_impl.h"

#define REF_PREFIX "registry:"

typedef struct hy__watch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: stop requested */
    int stop;
    hy_registry *reg;  /* the thread's own handle; NULL until opened (again) */
} hy__watch;

// --- resolving -------------------------------------------------------------------------

static int valid_digest(const char *d) {
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64) return 0;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

/* ref (without "registry:") in r: *path (hy__free) and the entry's name, version, digest. */
static hy_status resolve_in(hy_registry *r, const char *ref, char **path, hy__regver *ver) {
    char *p = NULL, *text = NULL;
    hy_status st = hy_registry_resolve(r, ref, &p, &text);
    if (st != HY_OK) return st;
    json_object *o = text ? json_tokener_parse(text) : NULL;
    json_object *jn = NULL, *jv = NULL, *jd = NULL;
    hy__regver v = {0};
    int ok = o && json_object_object_get_ex(o, "name", &jn) &&
             json_object_is_type(jn, json_type_string) &&
             json_object_object_get_ex(o, "version", &jv) &&
             json_object_is_type(jv, json_type_int) &&
             json_object_object_get_ex(o, "digest", &jd) &&
             json_object_is_type(jd, json_type_string);
    if (ok) {
        const char *name = json_object_get_string(jn), *dg = json_object_get_string(jd);
        int64_t n = json_object_get_int64(jv);
        ok = strlen(name) < sizeof v.name && n > 0 && n <= INT32_MAX && valid_digest(dg);
        if (ok) {
            snprintf(v.name, sizeof v.name, "%s", name);
            v.version = (int)n;
            snprintf(v.digest, sizeof v.digest, "%s", dg);
        }
    }
    json_object_put(o);
    hy_free(text);
    if (!ok) {
        hy_free(p);
        return hy__error(HY_ERR_FORMAT,
                         "registry reference '%s': its entry has no valid name, version and "
                         "sha256 digest",
                         ref);
    }
    *path = p;
    *ver = v;
    return HY_OK;
}

hy_status hy__registry_resolve(struct hy_server *s, const char *source, char **path,
                               hy__regver *ver) {
    const char *ref = source + strlen(REF_PREFIX);
    if (!s->registry_dir)
        return hy__error(HY_ERR_INVALID_ARG,
                         "'%s': no registry folder (registry_dir, --registry DIR or "
                         "HOTYOLO_REGISTRY)",
                         source);
    hy_registry *r = NULL;
    hy_status st = hy_registry_open(s->registry_dir, 0, &r);
    if (st == HY_OK) st = resolve_in(r, ref, path, ver);
    hy_registry_close(r);
    if (st != HY_OK && !strstr(hy_last_error(), ref))
        st = hy__error_prefix(st, "'%s'", source);
    return st;
}

// --- watcher ---------------------------------------------------------------------------

static int same_version(const hy__regver *a, const hy__regver *b) {
    return a->version == b->version && !strcmp(a->name, b->name) && !strcmp(a->digest, b->digest);
}

/* One registry model: resolve its reference; act when it names another version than at the
 * last poll (so a refused version is not retried every poll, and is tried again when the
 * reference comes back to it later). */
static void watch_entry(hy_server *s, hy__watch *w, hy__mentry *e) {
    hy__cache *c = &s->cache;
    char ref[512];
    pthread_mutex_lock(&c->mu);
    int have = e->source && strlen(e->source) < sizeof ref;
    if (have) snprintf(ref, sizeof ref, "%s", e->source + strlen(REF_PREFIX));
    hy__regver seen = e->reg_seen;
    pthread_mutex_unlock(&c->mu);
    if (!have) return;

    char *path = NULL;
    hy__regver v;
    hy_status st = w->reg ? HY_OK : hy_registry_open(s->registry_dir, 0, &w->reg);
    if (st == HY_OK) st = resolve_in(w->reg, ref, &path, &v);
    if (st != HY_OK) {
        if (seen.version >= 0) /* once per run of failures */
            hy__server_log(s, HY_LOG_WARN,
                           "model '%s': registry:%s does not resolve (%s); the current version "
                           "keeps serving",
                           e->name, ref, hy_last_error());
        hy_registry_close(w->reg); /* opened again next time */
        w->reg = NULL;
        pthread_mutex_lock(&c->mu);
        e->reg_seen.version = -1;
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (same_version(&v, &seen)) {
        hy_free(path);
        return;
    }
    pthread_mutex_lock(&c->mu);
    e->reg_seen = v;
    /* the same content under another name or number: no reload */
    int same_content = e->cur && e->reg_cur.version > 0 && !strcmp(e->reg_cur.digest, v.digest);
    hy__regver was = e->reg_cur;
    if (same_content) {
        e->reg_cur = v;
        e->reg_path = v;
    }
    pthread_mutex_unlock(&c->mu);
    if (same_content) {
        if (!same_version(&was, &v))
            hy__server_log(s, HY_LOG_INFO,
                           "model '%s': registry:%s now names %s@%d, the content already "
                           "serving (%s)",
                           e->name, ref, v.name, v.version, v.digest);
        hy_free(path);
        return;
    }
    hy__server_log(s, HY_LOG_INFO, "model '%s': registry:%s now names %s@%d (%s); swapping it in",
                   e->name, ref, v.name, v.version, v.digest);
    hy__cache_load_registry(c, e, path, &v); /* outcome logged by the load */
    hy_free(path);
}

static void *watch_main(void *arg) {
    hy_server *s = arg;
    hy__watch *w = s->watch;
    double poll_ms = s->p.registry_poll_s * 1e3;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double ns = (double)ts.tv_nsec + poll_ms * 1e6;
        ts.tv_sec += (time_t)(ns / 1e9);
        ts.tv_nsec = (long)(ns - (double)(time_t)(ns / 1e9) * 1e9);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (w->stop) break;
        pthread_mutex_unlock(&w->mu);
        for (hy__mentry *e = hy__cache_first(&s->cache); e; e = hy__cache_next(&s->cache, e)) {
            pthread_mutex_lock(&w->mu);
            int stop = w->stop;
            pthread_mutex_unlock(&w->mu);
            if (!stop) watch_entry(s, w, e);
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

hy_status hy__watch_start(struct hy_server *s) {
    if (!(s->p.registry_poll_s > 0)) return HY_OK;
    int any = 0;
    pthread_mutex_lock(&s->cache.mu);
    for (hy__mentry *e = s->cache.head; e; e = e->next) any |= e->source != NULL;
    pthread_mutex_unlock(&s->cache.mu);
    if (!any) return HY_OK;
    hy__watch *w = hy__calloc(1, sizeof *w);
    if (!w) return hy__error(HY_ERR_NOMEM, "out of memory (registry watcher)");
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->watch = w;
    if (pthread_create(&w->thread, NULL, watch_main, s) != 0) {
        s->watch = NULL;
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        hy__free(w);
        return hy__error(HY_ERR_NOMEM, "cannot start the registry watcher thread");
    }
    hy__server_log(s, HY_LOG_INFO, "registry %s: references resolved again every %g s",
                   s->registry_dir, s->p.registry_poll_s);
    return HY_OK;
}

void hy__watch_stop(struct hy_server *s) {
    hy__watch *w = s->watch;
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    hy_registry_close(w->reg);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    hy__free(w);
    s->watch = NULL;
}
