/* The HTTP server end to end, in process: the real hy_server (include/hotyolo/server.h) is
 * started once per fuzzer process on 127.0.0.1 (ephemeral port) with yolov8n at imgsz 32 and
 * one worker; each input is sent as the raw bytes of a connection (then a write shutdown), the
 * reply is read with a short timeout and checked:
 *   - every response starts with exactly one status line "HTTP/1.x NNN ...", its header block
 *     ends with an empty line, no header line is itself a status line (response splitting),
 *     at most one Content-Length, and the body has that many bytes;
 *   - a 4xx/5xx answer from hotyolo is Content-Type application/json with a JSON object body.
 * The server's gate checks every request head before libmicrohttpd parses it, and ends a
 * connection whose next request was pipelined into libmicrohttpd's buffer unchecked
 * (docs/http-api.md, "Connections and limits"), so no response may be libmicrohttpd's own
 * HTML page (counted, then a finding). A malformed response is a finding (trap); a server
 * crash, leak or hang is one too (ASan / LSan / libFuzzer -timeout).
 * The server answers a Host other than localhost / an IP literal with a 403 (checked like any
 * other error); the seeds say "Host: localhost". A request whose head is incomplete (no blank
 * line) may get no answer: silence is cut short after 100 ms there, 1 s otherwise.
 * Model: $HY_ASSETS/weights/yolov8n.pt (HY_ASSETS defaults to the build's HY_ASSETS_DIR).
 * HY_FUZZ_HTTP_DEBUG=1 prints every exchange (bytes sent, answer, timing). */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hotyolo/server.h"

#ifndef HY_FUZZ_ASSETS_DEFAULT
#define HY_FUZZ_ASSETS_DEFAULT "../shared/assets"
#endif

#define READ_CAP (8u << 20) /* response bytes kept per input (the rest is drained, unchecked) */
#define IO_TIMEOUT_MS 1000  /* per socket wait */
#define SHORT_TIMEOUT_MS 100 /* per socket wait when the request head is incomplete */
#define TOTAL_MS 3000       /* per input, whole exchange */

static hy_server *g_srv; /* reachable for the process's life: not a leak */
static int g_port;
static char *g_resp;

static size_t exchange(const uint8_t *data, size_t size, int *complete);
static void print_counts(void);

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *assets = getenv("HY_ASSETS");
    if (!assets || !*assets) assets = HY_FUZZ_ASSETS_DEFAULT;
    char model[4096];
    snprintf(model, sizeof model, "%s/weights/yolov8n.pt", assets);
    hy_server_params p = hy_server_default_params();
    p.host = "127.0.0.1";
    p.port = 0;
    p.imgsz[0] = 32; /* the smallest the server accepts: inference stays cheap */
    p.n_imgsz = 1;
    p.warmup_runs = 0;
    p.n_threads = 1;
    p.workers = 1;
    if (hy_server_create(&p, &g_srv) != HY_OK || hy_server_add_model(g_srv, "yolov8n", model, 1) ||
        hy_server_start(g_srv) != HY_OK) {
        fprintf(stderr, "fuzz_http: cannot start the server with %s: %s\n", model,
                hy_last_error());
        abort();
    }
    g_port = hy_server_port(g_srv);
    g_resp = malloc(READ_CAP + 1);
    if (!g_port || !g_resp) abort();
    /* Ready = the pinned model is loaded and warm (up to a minute under ASan). */
    static const char ready[] = "GET /health/ready HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (int i = 0;; i++) {
        int complete;
        size_t n = exchange((const uint8_t *)ready, sizeof ready - 1, &complete);
        if (n >= 12 && !memcmp(g_resp, "HTTP/1.1 200", 12)) break;
        if (i == 600) {
            fprintf(stderr, "fuzz_http: the server is not ready after 60 s: %.*s\n", (int)n,
                    g_resp);
            abort();
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "fuzz_http: server ready on 127.0.0.1:%d with %s\n", g_port, model);
    atexit(print_counts);
    return 0;
}

/* Sends data (as much as the server takes), half-closes, reads until EOF. Returns the bytes
 * kept in g_resp; *complete = 1 when the server closed the connection (EOF seen). */
static size_t exchange(const uint8_t *data, size_t size, int *complete) {
    *complete = 0;
    /* Without a blank line the request head is incomplete: the server may wait for the rest
     * until its header deadline (it need not answer), so silence is cut short there. */
    int io_ms = memmem(data, size, "\r\n\r\n", 4) || memmem(data, size, "\n\n", 2)
                    ? IO_TIMEOUT_MS
                    : SHORT_TIMEOUT_MS;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) abort();
    struct linger lg = {1, 0}; /* close with RST: no TIME_WAIT pile-up over millions of runs */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double deadline = now_ms() + TOTAL_MS;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) abort();
    size_t off = 0, got = 0;
    int wr_open = 1;
    while (now_ms() < deadline) {
        if (wr_open && off == size) {
            shutdown(fd, SHUT_WR);
            wr_open = 0;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (wr_open ? POLLOUT : 0)};
        double left = deadline - now_ms();
        if (poll(&pfd, 1, left < io_ms ? (int)left + 1 : io_ms) <= 0) break;
        if (wr_open && (pfd.revents & POLLOUT)) {
            ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                wr_open = 0; /* the server closed its side: read what it said */
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            char sink[65536];
            char *dst = got < READ_CAP ? g_resp + got : sink;
            size_t room = got < READ_CAP ? READ_CAP - got : sizeof sink;
            ssize_t n = recv(fd, dst, room, 0);
            if (n > 0) {
                if (dst != sink) got += (size_t)n;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                *complete = 1; /* EOF (or reset after the reply) */
                break;
            }
        }
    }
    if (getenv("HY_FUZZ_HTTP_DEBUG"))
        fprintf(stderr, "exchange: sent %zu/%zu, got %zu, eof %d, %.1f ms left\n", off, size, got,
                *complete, deadline - now_ms());
    if (getenv("HY_FUZZ_HTTP_DEBUG") && !got && !*complete)
        fprintf(stderr, "exchange: no answer to [%.*s]\n", (int)size, (const char *)data);
    if (getenv("HY_FUZZ_HTTP_DEBUG") && got)
        fprintf(stderr, "exchange: answer [%.*s]\n", (int)(got < 400 ? got : 400), g_resp);
    close(fd);
    g_resp[got] = '\0';
    return got;
}

static const char *find_crlfcrlf(const char *p, const char *end) {
    for (; p + 4 <= end; p++)
        if (p[0] == '\r' && p[1] == '\n' && p[2] == '\r' && p[3] == '\n') return p;
    return NULL;
}

static int starts_ci(const char *p, const char *end, const char *s) {
    size_t n = strlen(s);
    return (size_t)(end - p) >= n && strncasecmp(p, s, n) == 0;
}

static void fail(const char *why, const char *at, size_t len) {
    fprintf(stderr, "fuzz_http: malformed response: %s\n--- response (%zu bytes) ---\n%.*s\n",
            why, len, (int)(len < 2000 ? len : 2000), at);
    __builtin_trap();
}

static size_t g_mhd_pages, g_responses;

static void print_counts(void) {
    fprintf(stderr, "fuzz_http: %zu responses checked, %zu of them libmicrohttpd's own pages\n",
            g_responses, g_mhd_pages);
}

/* Checks the responses in r[0, n). complete: the server closed (so nothing is cut short). */
static void check(const char *r, size_t n, int complete, int has_head) {
    const char *p = r, *end = r + n;
    while (p < end) {
        if (end - p < 12 || (strncmp(p, "HTTP/1.1 ", 9) && strncmp(p, "HTTP/1.0 ", 9))) {
            if (!complete && end - p < 12) return; /* cut short by the timeout */
            fail("no status line", p, (size_t)(end - p));
        }
        int code = 0;
        for (int i = 9; i < 12; i++) {
            if (p[i] < '0' || p[i] > '9') fail("bad status code", p, (size_t)(end - p));
            code = code * 10 + (p[i] - '0');
        }
        if (code < 100 || code > 599) fail("status code out of range", p, (size_t)(end - p));
        const char *hend = find_crlfcrlf(p, end);
        if (!hend) {
            if (!complete) return;
            fail("header block not terminated", p, (size_t)(end - p));
        }
        /* header lines */
        long clen = -1;
        int n_clen = 0, chunked = 0;
        const char *ctype = NULL, *ctype_end = NULL;
        const char *line = memchr(p, '\n', (size_t)(hend - p));
        line = line ? line + 1 : hend;
        while (line < hend) {
            const char *le = memchr(line, '\r', (size_t)(hend + 2 - line));
            if (!le) le = hend;
            if (starts_ci(line, le, "HTTP/")) fail("a second status line", p, (size_t)(end - p));
            if (!memchr(line, ':', (size_t)(le - line))) fail("header line without ':'", p,
                                                              (size_t)(end - p));
            if (starts_ci(line, le, "Content-Length:")) {
                n_clen++;
                const char *v = line + 15;
                while (v < le && *v == ' ') v++;
                if (v == le) fail("empty Content-Length", p, (size_t)(end - p));
                clen = 0;
                for (; v < le; v++) {
                    if (*v < '0' || *v > '9' || clen > (1L << 40))
                        fail("bad Content-Length", p, (size_t)(end - p));
                    clen = clen * 10 + (*v - '0');
                }
            } else if (starts_ci(line, le, "Content-Type:")) {
                ctype = line + 13;
                while (ctype < le && *ctype == ' ') ctype++;
                ctype_end = le;
            } else if (starts_ci(line, le, "Transfer-Encoding:")) {
                chunked = 1;
            }
            line = le + 2;
        }
        if (n_clen > 1) fail("several Content-Length headers", p, (size_t)(end - p));
        const char *body = hend + 4;
        g_responses++;
        if (code < 200) { /* 100 Continue: no body */
            p = body;
            continue;
        }
        if (chunked) return; /* not produced by hotyolo; the rest is not checked */
        if (clen < 0) {
            if (code == 204 || code == 304) {
                p = body;
                continue;
            }
            if (!complete) return;
            clen = end - body; /* ends at close */
        }
        size_t blen = (size_t)clen;
        int no_body = 0;
        if ((size_t)(end - body) < blen) {
            /* HEAD (answered without a body) or a reply cut short by our timeout */
            if (has_head && (body == end || !strncmp(body, "HTTP/1.", 7)))
                no_body = 1;
            else if (!complete || n >= READ_CAP)
                return;
            else
                fail("body shorter than Content-Length", p, (size_t)(end - p));
        } else if (has_head && blen > 0 && !strncmp(body, "HTTP/1.", 7)) {
            no_body = 1;
        }
        if (no_body) blen = 0;
        if (code >= 400 && !no_body) {
            if (!ctype) {
                /* libmicrohttpd's own page (HTML, no Content-Type): never acceptable now */
                if (blen >= 6 && !strncmp(body, "<html>", 6)) g_mhd_pages++;
                fail("error without Content-Type", p, (size_t)(end - p));
            } else {
                if (!starts_ci(ctype, ctype_end, "application/json"))
                    fail("error response is not application/json", p, (size_t)(end - p));
                json_tokener *tok = json_tokener_new();
                if (!tok) abort();
                json_object *o = json_tokener_parse_ex(tok, body, (int)blen);
                int ok = o && json_object_is_type(o, json_type_object) &&
                         json_tokener_get_error(tok) == json_tokener_success &&
                         (size_t)json_tokener_get_parse_end(tok) == blen;
                json_object_put(o);
                json_tokener_free(tok);
                if (!ok) fail("error body is not one JSON object", p, (size_t)(end - p));
            }
        }
        p = body + blen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int complete = 0;
    size_t n = exchange(data, size, &complete);
    int has_head = memmem(data, size, "HEAD", 4) != NULL;
    check(g_resp, n, complete, has_head);
    return 0;
}
