/* Connection gate: the server's listening socket and the first line of defence in front of
 * libmicrohttpd (docs/http-api.md "Connections and limits").
 *
 * One gate thread (epoll) accepts every connection and peeks (MSG_PEEK) its first request
 * head until the blank line, within an absolute header deadline (slow bytes do not extend
 * it) and a size cap. The head is checked against an allow-list of HTTP/1.x syntax (request
 * line, method token, URL length, version, header count and form, one decimal
 * Content-Length within --max-body, no Transfer-Encoding, Host on 1.1): a head MHD would
 * answer with its own HTML page (or not at all, or wrongly) is answered here with the
 * documented JSON error, one status line, then closed. A valid head is handed to MHD
 * (MHD_add_connection) unless the connection limits say no (503 JSON):
 *   - at most max_connections connections, at most max_connections_per_ip of them from one
 *     address; GET/HEAD of /health/... and /metrics may use GATE_RESERVE more slots (those
 *     connections are closed after their response, so they cannot be held);
 *   - the connections still sending their head (pending) are bounded; when full, the oldest
 *     pending connection of the address with the most pending ones is dropped, so a new
 *     connection is always read: trickling bytes cannot keep anyone out.
 * After the handover MHD owns the socket (the gate never closes it; shutdown() only). The
 * gate thread enforces the body deadline. Keep-alive follow-ups: MHD's completion callback
 * runs in the connection's own thread before MHD reads on, so it waits there for the next
 * head and checks it the same way (follow_up), when MHD's buffer is known to be empty. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/server_impl.h"

#define GATE_HEAD_MAX (16 * 1024) /* request line + headers + blank line, bytes */
#define GATE_URL_MAX 8192 /* request target, bytes */
#define GATE_HEADERS_MAX 100 /* header lines */
#define GATE_RESERVE HY__GATE_RESERVE
#define GATE_PENDING_MAX 1024 /* connections whose head is not complete yet */
#define GATE_LINGER_MS 1000 /* after an error reply: read what the client still sends */
#define GATE_IDLE_MS 60000 /* keep-alive: the next head must be complete within this */
#define GATE_TICK_MS 250 /* deadline checks on MHD's connections */
#define GATE_IP_BUCKETS 1024
#define GATE_RESERVE_PER_IP 2 /* reserved (probe) slots one address may hold */

typedef enum gstate { G_PENDING, G_CLOSING, G_ADMITTED, G_DEAD } gstate;
typedef enum gphase { P_HEAD, P_BODY, P_BUSY, P_IDLE, P_SEND } gphase;

typedef struct ipent {
    unsigned char a[16]; /* IPv6, or IPv4-mapped */
    int pending, admitted, reserved; /* reserved: of admitted, in the probe reserve */
    struct ipent *next;
} ipent;

typedef struct gconn {
    int fd;
    gstate state;
    int reserved; /* admitted to the probe reserve */
    int started, killed; /* MHD announced it; the deadline shut it down */
    int refs; /* admitted: the gate's handover + MHD's (guarded by mu) */
    ipent *ip;
    double deadline; /* pending: head deadline; closing: linger end (monotonic ms) */
    atomic_llong mhd_deadline; /* admitted: ms (monotonic) by which the phase must end, 0 */
    atomic_int phase;
    /* Keep-alive follow-ups (connection thread only): bytes of the heads and bodies the gate
     * checked; when MHD has read exactly that many, its buffer is empty and the next head can be
     * peeked from the socket before MHD parses it. */
    unsigned long long checked_bytes;
    int unchecked; /* MHD read past what was checked (pipelining): stop checking */
    int will_close; /* the current request ends the connection */
    int n_requests; /* heads MHD parsed on this connection (connection thread only) */
    struct sockaddr_storage sa;
    socklen_t salen;
    struct gconn *prev, *next;
} gconn;

typedef struct glist {
    gconn *head, *tail;
    int n;
} glist;

struct hy__gate {
    hy_server *s;
    int lfd, ep, wake[2];
    pthread_t thread;
    int running;
    atomic_int quiesce, stop;
    pthread_mutex_t mu; /* admitted list, ip table, slot counts */
    glist pending; /* pending + closing, oldest first (gate thread only) */
    glist admitted; /* guarded by mu */
    glist dead; /* dropped during an epoll batch: freed after it (gate thread only) */
    int n_general, n_reserve;
    int pending_max;
    double accept_pause_until; /* out of descriptors: retry accept after this */
    ipent *buckets[GATE_IP_BUCKETS];
    char buf[GATE_HEAD_MAX + 1]; /* peek buffer (gate thread only) */
};

static gconn answered_marker; /* req_cls of a request the wrapper answered itself */

// --- small helpers --------------------------------------------------------------------

static void list_add(glist *l, gconn *c) {
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail) l->tail->next = c;
    else l->head = c;
    l->tail = c;
    l->n++;
}

static void list_del(glist *l, gconn *c) {
    if (c->prev) c->prev->next = c->next;
    else l->head = c->next;
    if (c->next) c->next->prev = c->prev;
    else l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

static void addr_key(const struct sockaddr_storage *sa, unsigned char key[16]) {
    memset(key, 0, 16);
    if (sa->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa->ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
}

static unsigned key_hash(const unsigned char k[16]) {
    unsigned h = 2166136261u;
    for (int i = 0; i < 16; i++) h = (h ^ k[i]) * 16777619u;
    return h % GATE_IP_BUCKETS;
}

/* The entry of an address, created on first use; NULL when out of memory. Under mu. */
static ipent *ip_get(hy__gate *g, const struct sockaddr_storage *sa) {
    unsigned char k[16];
    addr_key(sa, k);
    unsigned h = key_hash(k);
    for (ipent *e = g->buckets[h]; e; e = e->next)
        if (!memcmp(e->a, k, 16)) return e;
    ipent *e = hy__calloc(1, sizeof *e);
    if (!e) return NULL;
    memcpy(e->a, k, 16);
    e->next = g->buckets[h];
    g->buckets[h] = e;
    return e;
}

/* Frees the entry once no connection refers to it. Under mu. */
static void ip_put(hy__gate *g, ipent *e) {
    if (e->pending || e->admitted) return;
    ipent **pp = &g->buckets[key_hash(e->a)];
    while (*pp && *pp != e) pp = &(*pp)->next;
    if (*pp) *pp = e->next;
    hy__free(e);
}

static void addr_text(const gconn *c, char *buf, size_t cap) {
    const void *a = c->sa.ss_family == AF_INET6
        ? (const void *)&((const struct sockaddr_in6 *)&c->sa)->sin6_addr
        : (const void *)&((const struct sockaddr_in *)&c->sa)->sin_addr;
    if (!inet_ntop(c->sa.ss_family, a, buf, (socklen_t)cap)) snprintf(buf, cap, "?");
}

static const char *reason_phrase(int code) {
    switch (code) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

static hy__reject reject_reason(int code) {
    return code == 413 ? HY__REJ_BODY_TOO_LARGE
        : code == 503  ? HY__REJ_UNAVAILABLE
                       : HY__REJ_BAD_REQUEST;
}

// --- request head checks --------------------------------------------------------------

typedef struct head_info {
    int probe; /* GET/HEAD of a health probe or /metrics */
    unsigned long long content_length;
    char method[16]; /* for the log line, possibly truncated */
    char path[128];
} head_info;

static int is_tchar(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int is_probe_path(const char *p, size_t n) {
    static const char *const paths[] = {"/health/live", "/health/ready", "/v2/health/live",
                                        "/v2/health/ready", "/metrics"};
    for (size_t i = 0; i < HY_ARRAY_LEN(paths); i++)
        if (strlen(paths[i]) == n && !memcmp(paths[i], p, n)) return 1;
    return 0;
}

/* Checks the request line (line, n bytes, no CRLF). 0, or the status with msg set. */
static int check_request_line(const char *line, size_t n, head_info *hi, int *http11,
                              const char **msg) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i])) i++;
    if (i == 0 || i > 32 || i >= n || line[i] != ' ') {
        *msg = "malformed request line: expected METHOD SP /path SP HTTP/1.1";
        return 400;
    }
    snprintf(hi->method, sizeof hi->method, "%.*s", (int)(i < 15 ? i : 15), line);
    size_t t0 = ++i;
    while (i < n && line[i] != ' ') i++;
    size_t tn = i - t0;
    if (tn > GATE_URL_MAX) {
        *msg = "request URL is over the 8192 byte limit";
        return 414;
    }
    if (tn == 0 || line[t0] != '/' || i >= n) {
        *msg = "malformed request line: expected METHOD SP /path SP HTTP/1.1";
        return 400;
    }
    for (size_t k = t0; k < t0 + tn; k++)
        if ((unsigned char)line[k] <= 0x20 || (unsigned char)line[k] >= 0x7f) {
            *msg = "request URL has a byte that is not visible ASCII";
            return 400;
        }
    const char *v = line + i + 1;
    size_t vn = n - i - 1;
    if (vn == 8 && !memcmp(v, "HTTP/1.1", 8)) *http11 = 1;
    else if (vn == 8 && !memcmp(v, "HTTP/1.0", 8)) *http11 = 0;
    else if (vn == 8 && !memcmp(v, "HTTP/", 5) && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
             v[7] >= '0' && v[7] <= '9') {
        *msg = "HTTP version not supported: use HTTP/1.1 or HTTP/1.0";
        return 505;
    } else {
        *msg = "malformed request line: expected METHOD SP /path SP HTTP/1.1";
        return 400;
    }
    size_t pn = 0;
    while (pn < tn && line[t0 + pn] != '?') pn++;
    snprintf(hi->path, sizeof hi->path, "%.*s", (int)(pn < 127 ? pn : 127), line + t0);
    hi->probe =
        (!strcmp(hi->method, "GET") || !strcmp(hi->method, "HEAD")) && is_probe_path(line + t0, pn);
    return 0;
}

static int name_is(const char *p, size_t n, const char *name) {
    return strlen(name) == n && !strncasecmp(p, name, n);
}

/* Checks a complete head (n bytes, ending with the blank line). 0, or the status. */
static int check_head(const hy_server *s, const char *h, size_t n, head_info *hi,
                      const char **msg) {
    const char *end = h + n - 2; /* at the final CRLF */
    const char *eol = memchr(h, '\r', (size_t)(end - h));
    if (!eol || eol[1] != '\n' || memchr(h, '\n', (size_t)(eol - h))) {
        *msg = "malformed request line: expected METHOD SP /path SP HTTP/1.1";
        return 400;
    }
    int http11 = 0;
    int code = check_request_line(h, (size_t)(eol - h), hi, &http11, msg);
    if (code) return code;
    int n_headers = 0, n_host = 0, n_cl = 0;
    for (const char *p = eol + 2; p < end;) {
        const char *e = p;
        while (e < end && *e != '\r' && *e != '\n') e++;
        if (e >= end || e[0] != '\r' || e[1] != '\n') {
            *msg = "malformed header: lines must end with CRLF";
            return 400;
        }
        if (++n_headers > GATE_HEADERS_MAX) {
            *msg = "more than 100 request headers";
            return 431;
        }
        const char *c = p;
        while (c < e && is_tchar((unsigned char)*c)) c++;
        if (c == p || c >= e || *c != ':') {
            *msg = "malformed header line: expected Name: value";
            return 400;
        }
        size_t nn = (size_t)(c - p);
        const char *v = c + 1, *ve = e;
        for (const char *q = v; q < ve; q++) {
            unsigned char ch = (unsigned char)*q;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                *msg = "header value has a control character";
                return 400;
            }
        }
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        const char *ve_raw = ve; /* Content-Length: libmicrohttpd refuses trailing blanks */
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        if (name_is(p, nn, "Content-Length")) {
            if (ve != ve_raw) {
                *msg = "Content-Length is not a decimal number (trailing blanks)";
                return 400;
            }
            if (++n_cl > 1) {
                *msg = "more than one Content-Length header";
                return 400;
            }
            size_t dn = (size_t)(ve - v);
            unsigned long long val = 0;
            int over = 0;
            for (size_t k = 0; k < dn; k++) {
                if (v[k] < '0' || v[k] > '9') {
                    *msg = "Content-Length is not a decimal number";
                    return 400;
                }
                if (val > 1000000000000000000ULL) over = 1;
                else val = val * 10 + (unsigned)(v[k] - '0');
            }
            if (dn == 0) {
                *msg = "Content-Length is not a decimal number";
                return 400;
            }
            if (over || val > s->p.max_body) {
                *msg = "request body (Content-Length) is over the --max-body limit";
                return 413;
            }
            hi->content_length = val;
        } else if (name_is(p, nn, "Transfer-Encoding")) {
            *msg = "send the body with a Content-Length (Transfer-Encoding is not "
                   "accepted)";
            return 411;
        } else if (name_is(p, nn, "Host")) {
            n_host++;
        }
        p = e + 2;
    }
    if (http11 && n_host != 1) {
        *msg = n_host ? "more than one Host header" : "HTTP/1.1 request without a Host header";
        return 400;
    }
    return 0;
}

/* A head still incomplete (n bytes so far): 0 while it may become valid, else the status. */
static int check_partial(const char *h, size_t n, const char **msg) {
    const char *eol = memchr(h, '\n', n);
    size_t ln = eol ? (size_t)(eol - h) : n;
    size_t i = 0;
    while (i < ln && is_tchar((unsigned char)h[i])) i++;
    if ((i < ln && h[i] != ' ') || i > 32) {
        *msg = "malformed request line: expected METHOD SP /path SP HTTP/1.1";
        return 400;
    }
    if (!eol && n > GATE_URL_MAX + 64) {
        *msg = "request URL is over the 8192 byte limit";
        return 414;
    }
    if (eol) {
        if (ln == 0 || h[ln - 1] != '\r') {
            *msg = "malformed request line: expected METHOD SP /path SP HTTP/1.1";
            return 400;
        }
        head_info hi;
        int http11;
        return check_request_line(h, ln - 1, &hi, &http11, msg);
    }
    return 0;
}

// --- pending connections (gate thread) ------------------------------------------------

/* Closes a pending or closing connection now; the entry itself is freed by reap() after the
 * epoll batch, since a later event of the same batch may still point at it (G_DEAD: skipped). */
static void drop(hy__gate *g, gconn *c) {
    if (c->state == G_DEAD) return;
    epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    list_del(&g->pending, c);
    pthread_mutex_lock(&g->mu);
    c->ip->pending--;
    ip_put(g, c->ip);
    pthread_mutex_unlock(&g->mu);
    c->ip = NULL;
    c->state = G_DEAD;
    list_add(&g->dead, c);
}

static void reap(hy__gate *g) {
    while (g->dead.head) {
        gconn *c = g->dead.head;
        list_del(&g->dead, c);
        hy__free(c);
    }
}

/* Sends {"error": msg, "code": code} (one status line), stops writing, and lingers reading what the
 * client still sends so that the close does not reset the reply away. */
/* msg: one of this file's literals (no quote or backslash, well under 200 bytes). */
static int format_error(char *resp, size_t cap, int code, const char *msg) {
    char body[256];
    int bn = snprintf(body, sizeof body, "{\"error\":\"%s\",\"code\":%d}", msg, code);
    HY_ASSERT(bn > 0 && (size_t)bn < sizeof body); /* else Content-Length would overstate it */
    return snprintf(resp, cap,
                    "HTTP/1.1 %d %s\r\nContent-Type: "
                    "application/json\r\nContent-Length: %d\r\n"
                    "%sConnection: close\r\n\r\n%s",
                    code, reason_phrase(code), bn, code == 503 ? "Retry-After: 1\r\n" : "", body);
}

static void reply_close(hy__gate *g, gconn *c, int code, const char *msg, const head_info *hi) {
    char resp[640];
    int n = format_error(resp, sizeof resp, code, msg);
    ssize_t w = send(c->fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w; /* a client that cannot take 300 bytes gets nothing */
    shutdown(c->fd, SHUT_WR);
    c->state = G_CLOSING;
    c->deadline = hy__now_ms() + GATE_LINGER_MS;
    hy__metrics_reject(&g->s->metrics, reject_reason(code));
    char ip[INET6_ADDRSTRLEN];
    addr_text(c, ip, sizeof ip);
    hy__server_log(g->s, code >= 500 ? HY_LOG_ERROR : HY_LOG_WARN, "%s %s %d from %s: %s",
                   hi && hi->method[0] ? hi->method : "-", hi && hi->path[0] ? hi->path : "-", code,
                   ip, msg);
}

/* Reads and discards (closing state); closes on end of stream. */
static void linger_read(hy__gate *g, gconn *c) {
    for (int i = 0; i < 16; i++) {
        ssize_t r = recv(c->fd, g->buf, sizeof g->buf, MSG_DONTWAIT);
        if (r > 0) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        drop(g, c);
        return;
    }
}

/* The pending connection to drop when the set is full: the oldest of the address with the most
 * pending connections. */
static gconn *victim(hy__gate *g) {
    ipent *top = NULL;
    pthread_mutex_lock(&g->mu);
    for (int b = 0; b < GATE_IP_BUCKETS; b++)
        for (ipent *e = g->buckets[b]; e; e = e->next)
            if (e->pending && (!top || e->pending > top->pending)) top = e;
    pthread_mutex_unlock(&g->mu);
    for (gconn *c = g->pending.head; c; c = c->next)
        if (c->ip == top) return c;
    return g->pending.head;
}

/* Gives back the slot and address counts of an admitted connection. Under mu. */
static void release_admitted(hy__gate *g, gconn *c) {
    list_del(&g->admitted, c);
    if (c->reserved) {
        g->n_reserve--;
        c->ip->reserved--;
    } else {
        g->n_general--;
    }
    c->ip->admitted--;
    ip_put(g, c->ip);
    c->ip = NULL;
}

/* peeked: bytes in the socket when the head was checked (head_len of them are the head). */
static void admit(hy__gate *g, gconn *c, const head_info *hi, size_t head_len, size_t peeked) {
    hy_server *s = g->s;
    int per_ip = s->p.max_connections_per_ip;
    pthread_mutex_lock(&g->mu);
    int general_ok = g->n_general < s->p.max_connections && c->ip->admitted < per_ip;
    /* The reserve takes a bodiless probe alone on its connection, at most 2 per address: it
     * cannot be used to hold slots or to carry other requests past the limits. */
    int reserve_ok = hi->probe && !hi->content_length && peeked == head_len &&
        g->n_reserve < GATE_RESERVE && c->ip->reserved < GATE_RESERVE_PER_IP;
    if (!general_ok && !reserve_ok) {
        int ip_full = c->ip->admitted >= per_ip;
        pthread_mutex_unlock(&g->mu);
        reply_close(g, c, 503,
                    ip_full ? "too many connections from this address "
                              "(--max-connections-per-ip)"
                            : "too many connections (--max-connections); retry shortly",
                    hi);
        return;
    }
    c->reserved = !general_ok;
    if (c->reserved) {
        g->n_reserve++;
        c->ip->reserved++;
    } else {
        g->n_general++;
    }
    c->ip->pending--;
    c->ip->admitted++;
    list_del(&g->pending, c);
    c->state = G_ADMITTED;
    c->refs = 2;
    c->checked_bytes = head_len + hi->content_length;
    atomic_store(&c->phase, P_HEAD);
    atomic_store(&c->mhd_deadline, (long long)(hy__now_ms() + s->p.header_timeout_ms));
    list_add(&g->admitted, c);
    pthread_mutex_unlock(&g->mu);
    epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
    /* MHD owns the socket from here on (it closes it even when this fails). */
    enum MHD_Result ok = MHD_add_connection(s->mhd, c->fd, (struct sockaddr *)&c->sa, c->salen);
    pthread_mutex_lock(&g->mu);
    if (ok != MHD_YES && !c->started) {
        release_admitted(g, c);
        c->refs--;
        hy__server_log(s, HY_LOG_ERROR, "cannot hand a connection to libmicrohttpd: %s",
                       strerror(errno));
    }
    int last = --c->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (last) hy__free(c);
}

static void on_readable(hy__gate *g, gconn *c, int peer_done) {
    ssize_t n = recv(c->fd, g->buf, GATE_HEAD_MAX, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) { /* closed or reset before a whole head */
        drop(g, c);
        return;
    }
    const char *msg = NULL;
    head_info hi;
    memset(&hi, 0, sizeof hi);
    char *h = g->buf;
    size_t len = (size_t)n;
    const char *term = NULL;
    for (size_t i = 3; i < len && !term; i++)
        if (h[i] == '\n' && h[i - 1] == '\r' && h[i - 2] == '\n' && h[i - 3] == '\r')
            term = h + i + 1;
    if (!term) {
        int code = check_partial(h, len, &msg);
        if (!code && len >= GATE_HEAD_MAX) {
            code = 431;
            msg = "request head is over the 16384 byte limit";
        }
        if (!code && peer_done) { /* the client stopped sending: the head stays cut */
            code = 400;
            msg = "request head cut short (no blank line before the end of the stream)";
        }
        if (code) reply_close(g, c, code, msg, &hi);
        return; /* else wait for more bytes (EPOLLET: each arrival notifies again) */
    }
    int code = check_head(g->s, h, (size_t)(term - h), &hi, &msg);
    if (code) reply_close(g, c, code, msg, &hi);
    else admit(g, c, &hi, (size_t)(term - h), len);
}

static void do_accept(hy__gate *g) {
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(g->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
                if (g->pending.n) {
                    drop(g, victim(g)); /* frees a descriptor */
                } else { /* stop watching the (level-triggered) socket for a while */
                    epoll_ctl(g->ep, EPOLL_CTL_DEL, g->lfd, NULL);
                    g->accept_pause_until = hy__now_ms() + 100;
                }
            }
            return;
        }
        if (g->pending.n >= g->pending_max) drop(g, victim(g));
        gconn *c = hy__calloc(1, sizeof *c);
        pthread_mutex_lock(&g->mu);
        /* An admitted connection MHD never announced, whose descriptor number the kernel just
         * gave out again: MHD dropped it silently; give its counts back. */
        for (gconn *o = g->admitted.head, *on; o; o = on) {
            on = o->next;
            if (o->fd != fd || o->started) continue;
            release_admitted(g, o);
            if (--o->refs == 0) hy__free(o);
        }
        ipent *ip = c ? ip_get(g, &sa) : NULL;
        if (ip) ip->pending++;
        pthread_mutex_unlock(&g->mu);
        if (!ip) {
            hy__free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->ip = ip;
        c->sa = sa;
        c->salen = sl;
        c->state = G_PENDING;
        c->deadline = hy__now_ms() + g->s->p.header_timeout_ms;
        list_add(&g->pending, c);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) != 0) drop(g, c);
    }
}

/* Pending heads and lingering closes past their deadline; MHD's connections past theirs. */
static int expire(hy__gate *g, double now) {
    double next = now + GATE_TICK_MS;
    for (gconn *c = g->pending.head, *nx; c; c = nx) {
        nx = c->next;
        if (c->deadline > now) {
            if (c->deadline < next) next = c->deadline;
            continue;
        }
        if (c->state == G_PENDING) {
            head_info hi;
            memset(&hi, 0, sizeof hi);
            reply_close(g, c, 408, "request head not complete within --header-timeout", &hi);
            if (c->deadline < next) next = c->deadline;
        } else {
            drop(g, c);
        }
    }
    pthread_mutex_lock(&g->mu);
    for (gconn *c = g->admitted.head; c; c = c->next) {
        long long dl = atomic_load(&c->mhd_deadline);
        if (!c->started || c->killed || !dl || (double)dl > now) continue;
        /* MHD owns the descriptor (and closes it only after its CLOSED notice, which waits for mu):
         * shutdown makes its thread see the end and close the connection. */
        shutdown(c->fd, SHUT_RDWR);
        c->killed = 1;
        char ip[INET6_ADDRSTRLEN];
        addr_text(c, ip, sizeof ip);
        int ph = atomic_load(&c->phase);
        hy__server_log(g->s, HY_LOG_WARN, "connection from %s closed: %s", ip,
                       ph == P_BODY   ? "request body not complete within --body-timeout"
                           : ph == P_SEND ? "response not taken by the client within "
                                            "--send-timeout"
                           : ph == P_IDLE
                           ? "no complete request within 60 s on a kept-alive connection"
                           : "request head not handled in time");
    }
    pthread_mutex_unlock(&g->mu);
    int ms = (int)(next - now) + 1;
    return ms < 1 ? 1 : ms;
}

static void *gate_main(void *arg) {
    hy__gate *g = arg;
    struct epoll_event evs[64];
    int timeout = GATE_TICK_MS;
    while (!atomic_load(&g->stop)) {
        int n = epoll_wait(g->ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &g->lfd) {
                if (g->lfd >= 0 && !g->accept_pause_until) do_accept(g);
            } else if (p == &g->wake) {
                char b[16];
                while (read(g->wake[0], b, sizeof b) > 0) {
                }
            } else {
                gconn *c = p; /* G_DEAD: dropped earlier in this batch, freed after it */
                if (c->state == G_PENDING)
                    on_readable(g, c, (evs[i].events & (EPOLLRDHUP | EPOLLHUP)) != 0);
                else if (c->state == G_CLOSING) linger_read(g, c);
            }
        }
        reap(g);
        if (atomic_load(&g->quiesce) && g->lfd >= 0) {
            if (!g->accept_pause_until) epoll_ctl(g->ep, EPOLL_CTL_DEL, g->lfd, NULL);
            close(g->lfd);
            g->lfd = -1;
        }
        double now = hy__now_ms();
        if (g->accept_pause_until && now >= g->accept_pause_until) {
            g->accept_pause_until = 0;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g->lfd};
            if (g->lfd >= 0) epoll_ctl(g->ep, EPOLL_CTL_ADD, g->lfd, &ev);
        }
        timeout = expire(g, now);
        reap(g);
    }
    return NULL;
}

// --- lifecycle ------------------------------------------------------------------------

static int listen_socket(hy_server *s, int *port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    int v6 = strchr(s->host, ':') != NULL;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)s->p.port);
        inet_pton(AF_INET6, s->host, &a->sin6_addr); /* checked at create */
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)s->p.port);
        inet_pton(AF_INET, s->host, &a->sin_addr);
        sl = sizeof *a;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

hy_status hy__gate_start(hy_server *s) {
    hy__gate *g = hy__calloc(1, sizeof *g);
    if (!g) return hy__error(HY_ERR_NOMEM, "out of memory (connection gate)");
    g->s = s;
    g->lfd = g->ep = g->wake[0] = g->wake[1] = -1;
    pthread_mutex_init(&g->mu, NULL);
    s->gate = g;
    /* Pending heads may hold this many descriptors beside MHD's connections. */
    struct rlimit rl;
    long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        ? (long)rl.rlim_cur
        : 65536;
    long room = fds - s->p.max_connections - GATE_RESERVE - 64;
    g->pending_max = room < 16 ? 16 : room > GATE_PENDING_MAX ? GATE_PENDING_MAX : (int)room;
    g->lfd = listen_socket(s, &s->port);
    if (g->lfd < 0)
        return hy__error(HY_ERR_IO, "cannot listen on %s port %d: %s", s->host, s->p.port,
                         strerror(errno));
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    if (g->ep < 0 || pipe2(g->wake, O_NONBLOCK | O_CLOEXEC) != 0)
        return hy__error(HY_ERR_IO, "connection gate: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g->lfd};
    struct epoll_event ew = {.events = EPOLLIN, .data.ptr = &g->wake};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, g->lfd, &ev) != 0 ||
        epoll_ctl(g->ep, EPOLL_CTL_ADD, g->wake[0], &ew) != 0)
        return hy__error(HY_ERR_IO, "connection gate: %s", strerror(errno));
    if (pthread_create(&g->thread, NULL, gate_main, g) != 0)
        return hy__error(HY_ERR_NOMEM, "cannot start the connection gate thread");
    g->running = 1;
    return HY_OK;
}

static void wake(hy__gate *g) {
    ssize_t w = write(g->wake[1], "x", 1);
    (void)w; /* a full pipe already wakes it */
}

void hy__gate_quiesce(hy_server *s) {
    hy__gate *g = s->gate;
    if (!g) return;
    atomic_store(&g->quiesce, 1);
    if (g->running) wake(g);
    else if (g->lfd >= 0) {
        close(g->lfd);
        g->lfd = -1;
    }
}

void hy__gate_stop(hy_server *s) {
    hy__gate *g = s->gate;
    if (!g) return;
    atomic_store(&g->stop, 1);
    if (g->running) {
        wake(g);
        pthread_join(g->thread, NULL);
        g->running = 0;
    }
    while (g->pending.head) drop(g, g->pending.head);
    reap(g);
    if (g->lfd >= 0) close(g->lfd);
    g->lfd = -1;
}

void hy__gate_free(hy_server *s) {
    hy__gate *g = s->gate;
    if (!g) return;
    hy__gate_stop(s);
    /* MHD is stopped: its CLOSED notices removed every admitted connection. */
    while (g->admitted.head) {
        gconn *c = g->admitted.head;
        list_del(&g->admitted, c);
        hy__free(c);
    }
    for (int b = 0; b < GATE_IP_BUCKETS; b++)
        for (ipent *e = g->buckets[b], *nx; e; e = nx) {
            nx = e->next;
            hy__free(e);
        }
    if (g->ep >= 0) close(g->ep);
    if (g->wake[0] >= 0) close(g->wake[0]);
    if (g->wake[1] >= 0) close(g->wake[1]);
    pthread_mutex_destroy(&g->mu);
    hy__free(g);
    s->gate = NULL;
}

// --- MHD callbacks --------------------------------------------------------------------

void hy__gate_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                     enum MHD_ConnectionNotificationCode toe) {
    hy_server *s = cls;
    hy__gate *g = s->gate;
    if (!g) return;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci) return;
        /* the peer too: a descriptor number alone may be a reused one */
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        memset(&peer, 0, sizeof peer);
        if (getpeername(ci->connect_fd, (struct sockaddr *)&peer, &pl) != 0) pl = 0;
        pthread_mutex_lock(&g->mu);
        for (gconn *c = g->admitted.head; c; c = c->next)
            if (c->fd == ci->connect_fd && !c->started &&
                (!pl || (pl == c->salen && !memcmp(&peer, &c->sa, pl)))) {
                c->started = 1;
                *socket_ctx = c;
                break;
            }
        pthread_mutex_unlock(&g->mu);
        return;
    }
    gconn *c = *socket_ctx;
    if (!c) return;
    *socket_ctx = NULL;
    pthread_mutex_lock(&g->mu);
    if (c->ip) release_admitted(g, c); /* else released already (stale, see do_accept) */
    int last = --c->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (last) hy__free(c);
}

static gconn *conn_gconn(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

typedef struct hcount {
    int n, host, cl, te;
} hcount;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
    (void)kind;
    (void)value;
    hcount *hc = cls;
    hc->n++;
    if (!strcasecmp(key, "Host")) hc->host++;
    else if (!strcasecmp(key, "Content-Length")) hc->cl++;
    else if (!strcasecmp(key, "Transfer-Encoding")) hc->te++;
    return MHD_YES;
}

/* The head checks MHD leaves open, repeated on what MHD parsed: they matter for the requests
 * follow_up could not peek (pipelined, HTTP/1.0 keep-alive). 0 or the status. */
static int recheck(struct MHD_Connection *conn, const char *url, const char *version,
                   const char **msg) {
    if (strlen(url) > GATE_URL_MAX) {
        *msg = "request URL is over the 8192 byte limit";
        return 414;
    }
    hcount hc = {0, 0, 0, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &hc);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (hc.n > GATE_HEADERS_MAX) {
        *msg = "more than 100 request headers";
        return 431;
    }
    if (ci && ci->header_size > GATE_HEAD_MAX) {
        *msg = "request head is over the 16384 byte limit";
        return 431;
    }
    if (hc.cl > 1) {
        *msg = "more than one Content-Length header";
        return 400;
    }
    if (hc.te) {
        *msg = "send the body with a Content-Length (Transfer-Encoding is not "
               "accepted)";
        return 411;
    }
    if (!strcmp(version, "HTTP/1.1") && hc.host != 1) {
        *msg = hc.host ? "more than one Host header" : "HTTP/1.1 request without a Host header";
        return 400;
    }
    return 0;
}

static enum MHD_Result answer(hy_server *s, struct MHD_Connection *conn, int code, const char *msg,
                              const char *method, const char *url) {
    hy__metrics_reject(&s->metrics, reject_reason(code));
    /* method and URL of a pipelined request were never checked by the gate: escaped, so no
     * log line can be forged */
    char em[64], eu[512];
    hy__server_log(s, HY_LOG_WARN, "%s %s %d: %s", hy__log_escape(method, em, sizeof em),
                   hy__log_escape(url, eu, sizeof eu), code, msg);
    char *body = hy__malloc(256);
    if (!body) return MHD_NO;
    int n = snprintf(body, 256, "{\"error\":\"%s\",\"code\":%d}", msg, code);
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback((size_t)n, body, hy__free);
    if (!r) {
        hy__free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)code, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result hy__gate_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls) {
    hy_server *s = cls;
    if (*req_cls == &answered_marker) { /* answered with an error: drop the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    gconn *c = conn_gconn(conn);
    if (!*req_cls) { /* a new request's head */
        const char *msg = NULL;
        int code = recheck(conn, url, version, &msg);
        if (!code && c && c->reserved && ++c->n_requests > 1) {
            code = 400;
            msg = "a probe on a reserved connection slot must be its only request (nothing "
                  "pipelined behind it)";
        }
        if (code) {
            *req_cls = &answered_marker;
            return answer(s, conn, code, msg, method, url);
        }
        if (c) {
            const char *cn = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Connection");
            c->will_close = strcmp(version, "HTTP/1.1") != 0 || (cn && strcasestr(cn, "close"));
            atomic_store(&c->phase, P_BODY);
            atomic_store(&c->mhd_deadline, (long long)(hy__now_ms() + s->p.body_timeout_ms));
        }
    } else if (!*upload_data_size && c && atomic_load(&c->phase) == P_BODY) {
        atomic_store(&c->phase, P_BUSY); /* body complete: the request timeout governs */
        atomic_store(&c->mhd_deadline, 0);
    }
    int final = *req_cls && !*upload_data_size;
    enum MHD_Result ret = hy__route_access(cls, conn, url, method, version, upload_data,
                                           upload_data_size, req_cls);
    /* The last call queued the response: the client must take it within --send-timeout. */
    if (final && c && s->p.send_timeout_ms > 0) {
        atomic_store(&c->phase, P_SEND);
        atomic_store(&c->mhd_deadline, (long long)(hy__now_ms() + s->p.send_timeout_ms));
    }
    return ret;
}

/* 1 when MHD has read exactly the bytes the gate checked: nothing of the next request sits in its
 * buffer, so the socket holds the whole next head. */
static int mhd_buffer_empty(gconn *c, int *queued) {
    /* MHD's thread is here, so only the client changes the counts: a snapshot is consistent when
     * the queue did not change around the byte count. */
    for (int tries = 0; tries < 4; tries++) {
        struct tcp_info ti;
        socklen_t tl = sizeof ti;
        int inq0 = 0, inq1 = 0;
        memset(&ti, 0, sizeof ti);
        if (ioctl(c->fd, FIONREAD, &inq0) != 0 ||
            getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0 ||
            tl < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received ||
            ioctl(c->fd, FIONREAD, &inq1) != 0)
            return 0;
        *queued = inq1;
        if (inq0 != inq1) continue;
        unsigned long long read = ti.tcpi_bytes_received - (unsigned long long)inq1;
        if (read == c->checked_bytes) return 1;
        /* the client's FIN advances the count by one too */
        struct pollfd pf = {.fd = c->fd, .events = POLLRDHUP};
        return read == c->checked_bytes + 1 && poll(&pf, 1, 0) == 1 && (pf.revents & POLLRDHUP);
    }
    return 0;
}

/* Answers a follow-up head with the JSON error from the connection's own thread (MHD waits in its
 * completion callback, so nothing else writes), reads what the client still sends for up to
 * GATE_LINGER_MS, and shuts the socket: MHD then sees the end and closes it. */
static void follow_up_reject(hy_server *s, gconn *c, int code, const char *msg, const head_info *hi,
                             char *buf, size_t cap) {
    char resp[640];
    int n = format_error(resp, sizeof resp, code, msg);
    ssize_t w = send(c->fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(c->fd, SHUT_WR);
    hy__metrics_reject(&s->metrics, reject_reason(code));
    hy__server_log(s, code >= 500 ? HY_LOG_ERROR : HY_LOG_WARN, "%s %s %d: %s",
                   hi->method[0] ? hi->method : "-", hi->path[0] ? hi->path : "-", code, msg);
    double end = hy__now_ms() + GATE_LINGER_MS;
    for (;;) {
        ssize_t r = recv(c->fd, buf, cap, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
        double left = end - hy__now_ms();
        if (left <= 0) break;
        if (r < 0) {
            struct pollfd pf = {.fd = c->fd, .events = POLLIN};
            poll(&pf, 1, (int)left + 1);
        }
    }
    shutdown(c->fd, SHUT_RDWR);
}

/* Keep-alive: waits (in the connection's thread) for the next request head and checks it as the
 * gate checks a first head: idle limit GATE_IDLE_MS, then --header-timeout from its first byte.
 * Returns with the head complete and valid in the socket (MHD parses it next), or with the socket
 * shut (answered, timed out, or closed by the client). */
static void follow_up(hy_server *s, gconn *c, int queued) {
    hy__gate *g = s->gate;
    char buf[GATE_HEAD_MAX];
    double idle_end = hy__now_ms() + GATE_IDLE_MS;
    double head_end = queued ? hy__now_ms() + s->p.header_timeout_ms : 0; /* bytes are there */
    int nap_ms = 1;
    while (!atomic_load(&g->stop)) {
        double now = hy__now_ms();
        if (!head_end) {
            struct pollfd pf = {.fd = c->fd, .events = POLLIN};
            if (now >= idle_end) {
                shutdown(c->fd, SHUT_RDWR); /* idle too long: MHD closes it */
                return;
            }
            int slice = (int)(idle_end - now) + 1;
            int r = poll(&pf, 1, slice < GATE_TICK_MS ? slice : GATE_TICK_MS);
            if (r <= 0) continue;
            head_end = hy__now_ms() + s->p.header_timeout_ms;
        }
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return; /* closed: MHD sees it */
        head_info hi;
        memset(&hi, 0, sizeof hi);
        const char *msg = NULL;
        int code = 0;
        size_t len = n > 0 ? (size_t)n : 0;
        const char *term = NULL;
        for (size_t i = 3; i < len && !term; i++)
            if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
                term = buf + i + 1;
        if (term) {
            code = check_head(s, buf, (size_t)(term - buf), &hi, &msg);
            if (!code) {
                c->checked_bytes += (size_t)(term - buf) + hi.content_length;
                atomic_store(&c->phase, P_HEAD);
                atomic_store(&c->mhd_deadline, (long long)(hy__now_ms() + s->p.header_timeout_ms));
                return;
            }
        } else {
            code = check_partial(buf, len, &msg);
            if (!code && len >= GATE_HEAD_MAX) {
                code = 431;
                msg = "request head is over the 16384 byte limit";
            }
            if (!code && hy__now_ms() >= head_end) {
                code = 408;
                msg = "request head not complete within --header-timeout";
            }
        }
        if (code) {
            follow_up_reject(s, c, code, msg, &hi, buf, sizeof buf);
            return;
        }
        /* Part of a head: the socket stays readable, so poll cannot wait for more bytes; nap,
         * waking early if the client stops sending (the head then stays cut). */
        struct pollfd pf = {.fd = c->fd, .events = POLLRDHUP};
        if (poll(&pf, 1, nap_ms) > 0) {
            head_info none;
            memset(&none, 0, sizeof none);
            follow_up_reject(s, c, 400,
                             "request head cut short (no blank line before the end of the stream)",
                             &none, buf, sizeof buf);
            return;
        }
        if (nap_ms < 50) nap_ms *= 2;
    }
}

void hy__gate_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe) {
    hy_server *s = cls;
    int answered = *req_cls == &answered_marker;
    if (answered) *req_cls = NULL;
    else hy__route_completed(cls, conn, req_cls, toe);
    gconn *c = conn_gconn(conn);
    int queued = 0;
    if (!c) return;
    if (c->reserved) { /* a probe slot serves one request: it cannot be held idle */
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    atomic_store(&c->phase, P_IDLE);
    atomic_store(&c->mhd_deadline, 0);
    if (!answered && !c->will_close && !c->unchecked &&
        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && s->gate && mhd_buffer_empty(c, &queued)) {
        follow_up(s, c, queued);
        return;
    }
    if (!answered && !c->will_close && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        /* Bytes of a next request already sit in MHD's buffer (pipelining), where the gate cannot
         * check them, and MHD answers some malformed heads with its own HTML page: end the
         * connection after this complete response instead. The client retries the pipelined
         * requests on a new connection (RFC 9112 9.3.2), whose first head the gate checks. */
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    /* Closing anyway (an error, Connection: close, HTTP/1.0): the watchdog bounds the rest. */
    c->unchecked = 1;
    atomic_store(&c->mhd_deadline, (long long)(hy__now_ms() + GATE_IDLE_MS));
}
