/* Service manager notification: systemd's sd_notify protocol (docs/deploy.md).
 *
 * Active only when NOTIFY_SOCKET is set (systemd sets it for Type=notify units) and
 * libsystemd.so.0 can be opened at run time (dlopen, like mhd.c: no link dependency, and a
 * process without it serves the same, only unannounced). Messages:
 *   READY=1     once, when the server listens and /health/ready would answer 200 (every
 *               pinned model loaded and warm); never before.
 *   STOPPING=1  once, when a stop is requested (drain begins, /health/ready turns 503).
 *   WATCHDOG=1  every WATCHDOG_USEC / 2 while the server is healthy (see healthy()); with a
 *               hung server the pings stop and systemd restarts it (WatchdogSec=).
 *   STATUS=...  one human line: loading, serving, not ready (why), draining.
 * A notifier thread runs the watchdog and catches readiness reached late (a pinned model
 * loaded again through the repository API); the hooks in server.c send at once. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "server/server_impl.h"

#define HY_SYSTEMD_SONAME "libsystemd.so.0"
#define IDLE_TICK_MS 1000     /* readiness / status poll when no watchdog is asked for */
#define MIN_TICK_MS 20        /* floor on the watchdog ping interval */
#define PROBE_MAX_MS 2000     /* the self-probe's deadline (less with a short watchdog) */
#define STUCK_SLACK_MS 30000  /* a queued job older than the request timeout + this: hung */

struct hy__notify {
    int (*notify)(int unset_environment, const char *state);
    uint64_t watchdog_usec; /* 0: no watchdog asked for */
    atomic_int port;        /* > 0 once the server listens */
    atomic_int ready_sent, stopping_sent;
    pthread_t thread;
    int running, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char status[512];       /* last STATUS= sent by the thread (thread only) */
};

static void send_line(hy__notify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(hy__notify *n, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    n->notify(0, buf); /* best effort: systemd gone is no reason to stop serving */
}

void hy__notify_init(struct hy_server *s) {
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!sock || !*sock) return;
    void *h = dlopen(HY_SYSTEMD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        hy__server_log(s, HY_LOG_WARN,
                       "NOTIFY_SOCKET is set but %s cannot be loaded (Debian package "
                       "libsystemd0): no readiness notification",
                       HY_SYSTEMD_SONAME);
        return;
    }
    int (*fn)(int, const char *);
    int (*wd)(int, uint64_t *);
    *(void **)&fn = dlsym(h, "sd_notify");
    *(void **)&wd = dlsym(h, "sd_watchdog_enabled");
    hy__notify *n = fn ? hy__calloc(1, sizeof *n) : NULL;
    if (!n) {
        hy__server_log(s, HY_LOG_WARN, "sd_notify unavailable (%s): no readiness notification",
                       fn ? "out of memory" : "no symbol sd_notify");
        dlclose(h);
        return;
    }
    n->notify = fn; /* h stays open for the life of the process */
    uint64_t usec = 0;
    /* honours WATCHDOG_PID: a watchdog meant for another process is not ours */
    if (wd && wd(0, &usec) > 0) n->watchdog_usec = usec;
    atomic_init(&n->port, 0);
    atomic_init(&n->ready_sent, 0);
    atomic_init(&n->stopping_sent, 0);
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    s->notify = n;
    hy__server_log(s, HY_LOG_INFO, "sd_notify: notifying %s%s", sock,
                   n->watchdog_usec ? " (watchdog on)" : "");
}

void hy__notify_status(struct hy_server *s, const char *fmt, ...) {
    hy__notify *n = s->notify;
    if (!n) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    send_line(n, "STATUS=%s", buf);
}

static void url_of(struct hy_server *s, int port, char *out, size_t cap) {
    int v6 = strchr(s->host, ':') != NULL;
    snprintf(out, cap, "http://%s%s%s:%d/", v6 ? "[" : "", s->host, v6 ? "]" : "", port);
}

/* READY=1 the first time the server listens and is ready. Returns 1 when ready now. */
static int check_ready(struct hy_server *s, hy__notify *n, char *reason, size_t cap) {
    int port = atomic_load(&n->port);
    if (port <= 0) {
        snprintf(reason, cap, "loading pinned models");
        return 0;
    }
    if (!hy__server_ready(s, reason, cap)) return 0;
    if (!atomic_load(&n->ready_sent) && !atomic_exchange(&n->ready_sent, 1)) {
        char url[128];
        url_of(s, port, url, sizeof url);
        send_line(n, "READY=1\nSTATUS=ready: serving on %s", url);
        hy__server_log(s, HY_LOG_INFO, "sd_notify: READY=1");
    }
    return 1;
}

void hy__notify_listening(struct hy_server *s, int port) {
    hy__notify *n = s->notify;
    if (!n) return;
    atomic_store(&n->port, port);
    char reason[512];
    if (!check_ready(s, n, reason, sizeof reason)) send_line(n, "STATUS=not ready: %s", reason);
}

void hy__notify_check(struct hy_server *s) {
    hy__notify *n = s->notify;
    char reason[512];
    if (n) check_ready(s, n, reason, sizeof reason);
}

void hy__notify_stopping(struct hy_server *s) {
    hy__notify *n = s->notify;
    if (!n || atomic_exchange(&n->stopping_sent, 1)) return;
    send_line(n, "STOPPING=1\nSTATUS=draining requests in flight");
}

// --- watchdog --------------------------------------------------------------------------

static int lock_within(pthread_mutex_t *mu, int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    if (pthread_mutex_timedlock(mu, &ts) != 0) return 0;
    pthread_mutex_unlock(mu);
    return 1;
}

/* GET /health/live on our own port over loopback (or the bound address): proves that the
 * gate thread accepts, MHD hands the connection to a thread and the routes answer, as a
 * Kubernetes livenessProbe would. 1 on a 200 within ms. */
static int probe_live(struct hy_server *s, int port, int ms) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    const char *host = s->host;
    char hosthdr[96];
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (!strcmp(host, "::")) host = "::1";
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return 0;
        len = sizeof *a;
        snprintf(hosthdr, sizeof hosthdr, "[%s]:%d", host, port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (!strcmp(host, "0.0.0.0")) host = "127.0.0.1";
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return 0;
        len = sizeof *a;
        snprintf(hosthdr, sizeof hosthdr, "%s:%d", host, port);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect() too */
    double t_end = hy__now_ms() + ms;
    char req[192], resp[512];
    int n = snprintf(req, sizeof req,
                     "GET /health/live HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", hosthdr);
    size_t got = 0;
    int ok = connect(fd, (struct sockaddr *)&ss, len) == 0 &&
             send(fd, req, (size_t)n, MSG_NOSIGNAL) == (ssize_t)n;
    while (ok && got < sizeof resp - 1 && hy__now_ms() < t_end) { /* to EOF: a clean close */
        ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    resp[got] = '\0';
    return ok && !strncmp(resp, "HTTP/1.1 200 ", 13);
}

/* Healthy: the cache and queue locks are not held for longer than a probe (a deadlock),
 * no queued job has waited past the request timeout + 30 s (every worker hung), and, while
 * listening and not draining, the HTTP self-probe answers. why: the first failure. */
static int healthy(struct hy_server *s, hy__notify *n, int probe_ms, char *why, size_t cap) {
    if (!lock_within(&s->cache.mu, probe_ms) || !lock_within(&s->queue.mu, probe_ms)) {
        snprintf(why, cap, "a server lock has been held for over %d ms", probe_ms);
        return 0;
    }
    int limit = (s->p.timeout_ms > 0 ? s->p.timeout_ms : 60000) + STUCK_SLACK_MS;
    pthread_mutex_lock(&s->queue.mu);
    double waited = s->queue.head ? hy__now_ms() - s->queue.head->t_queued : 0;
    pthread_mutex_unlock(&s->queue.mu);
    if (waited > limit) {
        snprintf(why, cap, "no worker has taken a job for %.0f ms", waited);
        return 0;
    }
    int port = atomic_load(&n->port);
    if (port > 0 && !atomic_load(&s->draining) && !probe_live(s, port, probe_ms)) {
        snprintf(why, cap, "GET /health/live on port %d got no 200 within %d ms", port, probe_ms);
        return 0;
    }
    return 1;
}

static void *notify_main(void *arg) {
    struct hy_server *s = arg;
    hy__notify *n = s->notify;
    int tick_ms = IDLE_TICK_MS;
    if (n->watchdog_usec) {
        uint64_t half = n->watchdog_usec / 2000;
        tick_ms = half < MIN_TICK_MS ? MIN_TICK_MS : half > 60000 ? 60000 : (int)half;
    }
    int probe_ms = tick_ms / 2 < PROBE_MAX_MS ? tick_ms / 2 : PROBE_MAX_MS;
    if (probe_ms < 10) probe_ms = 10;
    int was_healthy = 1;
    pthread_mutex_lock(&n->mu);
    while (!n->stop) {
        pthread_mutex_unlock(&n->mu);
        char reason[512] = "", status[512];
        if (atomic_load(&s->draining)) {
            snprintf(status, sizeof status, "draining: %ld requests in flight",
                     atomic_load(&s->in_flight));
        } else if (check_ready(s, n, reason, sizeof reason)) {
            char url[128];
            url_of(s, atomic_load(&n->port), url, sizeof url);
            snprintf(status, sizeof status, "ready: serving on %s", url);
        } else {
            snprintf(status, sizeof status, "not ready: %s", reason);
        }
        if (strcmp(status, n->status)) {
            snprintf(n->status, sizeof n->status, "%s", status);
            send_line(n, "STATUS=%s", status);
        }
        if (n->watchdog_usec) {
            char why[256];
            int ok = healthy(s, n, probe_ms, why, sizeof why);
            if (ok) send_line(n, "WATCHDOG=1");
            if (ok != was_healthy)
                hy__server_log(s, ok ? HY_LOG_INFO : HY_LOG_ERROR, "sd_notify: %s",
                               ok ? "healthy again: watchdog pings resumed"
                                  : why); /* systemd restarts us if this lasts WatchdogSec */
            was_healthy = ok;
        }
        pthread_mutex_lock(&n->mu);
        if (n->stop) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(tick_ms % 1000) * 1000000L;
        ts.tv_sec += tick_ms / 1000 + ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&n->cv, &n->mu, &ts);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

hy_status hy__notify_start(struct hy_server *s) {
    hy__notify *n = s->notify;
    if (!n) return HY_OK;
    if (pthread_create(&n->thread, NULL, notify_main, s) != 0)
        return hy__error(HY_ERR_NOMEM, "cannot start the sd_notify thread");
    n->running = 1;
    return HY_OK;
}

void hy__notify_stop(struct hy_server *s) {
    hy__notify *n = s->notify;
    if (!n || !n->running) return;
    pthread_mutex_lock(&n->mu);
    n->stop = 1;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thread, NULL);
    n->running = 0;
}

void hy__notify_free(struct hy_server *s) {
    hy__notify *n = s->notify;
    if (!n) return;
    hy__notify_stop(s);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    hy__free(n);
    s->notify = NULL;
}
