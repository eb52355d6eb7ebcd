/* Fleet distribution: push / pull registry entries over the OCI Distribution
 * API (libcurl, opened at run time: curl_dl.h). docs/registry.md ("Fleet: OCI")
 * has the wire format:
 *
 *   manifest  application/vnd.oci.image.manifest.v1+json, artifactType
 *             application/vnd.hotyolo.model.v1
 *   config    application/vnd.hotyolo.model.config.v1+json: the registry entry
 * (record, metrics, scenario, ...), without local state (blob path, aliases,
 * bindings) layer
 * application/vnd.hotyolo.model.weights.v1[.safetensors|.pt|.onnx]: the weights
 *             file, digest = its sha256
 *
 * Every byte that comes back is untrusted: header lines, bodies and redirects
 * are bounded, manifests are checked against an allow-list, and a pulled blob
 * reaches the store only after its sha256 matched the manifest. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sha256.h"
#include "registry/curl_dl.h"
#include "registry/registry_impl.h"
#include "registry/oci_parse.h"

// --- limits and media types
// ---------------------------------------------------------------

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_ARTIFACT "application/vnd.hotyolo.model.v1"
#define MT_CONFIG "application/vnd.hotyolo.model.config.v1+json"
#define MT_WEIGHTS "application/vnd.hotyolo.model.weights.v1"
#define ANN_TITLE "org.opencontainers.image.title"

#define HDR_BYTES_MAX (64 << 10) /* one response's header block */
#define HDR_VALUE_MAX                                                          \
  4096 /* a header value we keep (Location, WWW-Authenticate) */
#define MANIFEST_MAX (256 << 10)      /* ours are ~600 bytes */
#define CONFIG_MAX (1 << 20)          /* the entry JSON */
#define LAYER_MAX ((uint64_t)2 << 30) /* weights file */
#define SMALL_BODY_MAX                                                         \
  (64 << 10) /* token responses, error bodies read (kept: ERR_KEEP) */
#define ERR_KEEP 512
#define REDIRECTS_MAX 5
#define URL_MAX 8192
#define REPO_MAX 255
#define TAG_MAX 128
#define JSON_DEPTH 16

// --- oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]
// ---------------------------------------------

typedef struct oci_url {
  char host[256]; /* as written (IPv6 with its brackets) */
  int port;       /* 0: scheme default */
  char repo[REPO_MAX + 1];
  char ref[TAG_MAX + 8]; /* tag, or "sha256:<hex>" */
  int by_digest;
  char base[320]; /* "http(s)://host[:port]" */
} oci_ref;

static int is_lower_alnum(int c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Repository names as the distribution spec allows them: path components of
 * [a-z0-9]+ joined by '.', '_', '__' or '-'+; components joined by '/'. */
static int repo_ok(const char *s, size_t n) {
  if (n == 0 || n > REPO_MAX)
    return 0;
  size_t i = 0;
  for (;;) {
    if (i >= n || !is_lower_alnum(s[i]))
      return 0; /* component starts alnum */
    while (i < n && s[i] != '/') {
      if (is_lower_alnum(s[i])) {
        i++;
        continue;
      }
      size_t j = i;
      if (s[i] == '.')
        j++;
      else if (s[i] == '_')
        j += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
      else if (s[i] == '-')
        while (j < n && s[j] == '-')
          j++;
      else
        return 0;
      if (j >= n || !is_lower_alnum(s[j]))
        return 0; /* separator then alnum */
      i = j;
    }
    if (i == n)
      return 1;
    i++; /* '/' */
  }
}

static int tag_ok(const char *s, size_t n) {
  if (n == 0 || n > TAG_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    const int c = (unsigned char)s[i];
    if (!(isalnum(c) || c == '_' || (i > 0 && (c == '.' || c == '-'))))
      return 0;
  }
  return 1;
}

static int hex64_ok(const char *s) {
  for (int i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return s[64] == '\0';
}

/* "sha256:<64 lowercase hex>" */
static int digest_ok(const char *s) {
  return s && strncmp(s, "sha256:", 7) == 0 && hex64_ok(s + 7);
}

static hy_status url_parse(const char *url, const hy_oci_params *p,
                           oci_ref *u) {
  memset(u, 0, sizeof *u);
  if (!url || strncmp(url, "oci://", 6) != 0)
    return hy__error(HY_ERR_INVALID_ARG,
                     "%s: expected oci://HOST[:PORT]/REPO[:TAG]",
                     url ? url : "(null)");
  const char *s = url + 6, *slash = strchr(s, '/');
  if (!slash)
    return hy__error(HY_ERR_INVALID_ARG,
                     "%s: no repository (oci://HOST[:PORT]/REPO[:TAG])", url);
  /* host: a name or IPv4 ([A-Za-z0-9.-]) or a bracketed IPv6 literal; then an
   * optional port */
  const char *h = s, *he;
  if (*h == '[') {
    he = memchr(h, ']', (size_t)(slash - h));
    if (!he)
      return hy__error(HY_ERR_INVALID_ARG, "%s: unterminated [IPv6] host", url);
    for (const char *q = h + 1; q < he; q++)
      if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
        return hy__error(HY_ERR_INVALID_ARG, "%s: bad character in the host",
                         url);
    he++;
  } else {
    he = h;
    while (he < slash &&
           (isalnum((unsigned char)*he) || *he == '.' || *he == '-'))
      he++;
  }
  const size_t hn = (size_t)(he - h);
  if (hn == 0 || hn >= sizeof u->host ||
      (*h != '[' && (*h == '-' || *h == '.')))
    return hy__error(HY_ERR_INVALID_ARG, "%s: bad host", url);
  memcpy(u->host, h, hn);
  if (he < slash) {
    if (*he != ':' || he + 1 == slash)
      return hy__error(HY_ERR_INVALID_ARG, "%s: bad host or port", url);
    long port = 0;
    for (const char *q = he + 1; q < slash; q++) {
      if (!isdigit((unsigned char)*q) ||
          (port = port * 10 + (*q - '0')) > 65535)
        return hy__error(HY_ERR_INVALID_ARG, "%s: bad port", url);
    }
    if (port == 0)
      return hy__error(HY_ERR_INVALID_ARG, "%s: bad port", url);
    u->port = (int)port;
  }
  /* REPO[:TAG] or REPO@sha256:HEX */
  const char *r = slash + 1, *at = strchr(r, '@'), *end = r + strlen(r);
  const char *colon = NULL;
  if (at) {
    if (!digest_ok(at + 1))
      return hy__error(HY_ERR_INVALID_ARG, "%s: expected @sha256:<64 hex>",
                       url);
    end = at;
    snprintf(u->ref, sizeof u->ref, "%s", at + 1);
    u->by_digest = 1;
  } else {
    colon = strrchr(r, ':');
    if (colon) {
      if (!tag_ok(colon + 1, strlen(colon + 1)))
        return hy__error(
            HY_ERR_INVALID_ARG,
            "%s: bad tag (letters, digits, '_', '.', '-'; at most %d)", url,
            TAG_MAX);
      snprintf(u->ref, sizeof u->ref, "%s", colon + 1);
      end = colon;
    } else {
      snprintf(u->ref, sizeof u->ref, "latest");
    }
  }
  if (!repo_ok(r, (size_t)(end - r)))
    return hy__error(HY_ERR_INVALID_ARG,
                     "%s: bad repository name (lowercase letters, digits, '.', "
                     "'_', '-', '/')",
                     url);
  memcpy(u->repo, r, (size_t)(end - r));
  const int loopback = !strcmp(u->host, "127.0.0.1") ||
                       !strcasecmp(u->host, "localhost") ||
                       !strcmp(u->host, "[::1]");
  const int http = loopback || (p && p->insecure);
  if (u->port)
    snprintf(u->base, sizeof u->base, "%s://%s:%d", http ? "http" : "https",
             u->host, u->port);
  else
    snprintf(u->base, sizeof u->base, "%s://%s", http ? "http" : "https",
             u->host);
  return HY_OK;
}

// --- HTTP exchange
// --------------------------------------------------------------------------

typedef struct body_src { /* request body: memory or a file descriptor */
  const uint8_t *mem;
  int fd;
  uint64_t len, off;
} body_src;

typedef struct http_res {
  long status; /* of the last response seen (redirects followed) */
  size_t hdr_bytes;
  int64_t content_length; /* -1 when not announced */
  char location[HDR_VALUE_MAX];
  char content_type[256];
  char www_auth[HDR_VALUE_MAX];
  char docker_digest[80];
  /* 2xx body sink: memory (mem_max) or a file descriptor with a running sha256
   */
  char *mem;
  size_t mem_len, mem_cap, mem_max;
  int out_fd;
  hy__sha256_ctx *hash;
  uint64_t out_len, out_max;
  /* other statuses: the start of the body, for the error text */
  char err[ERR_KEEP + 1];
  size_t err_len, err_total;
  char fail[256]; /* why a callback stopped the transfer */
} http_res;

typedef struct oci_conn {
  CURL *h;
  oci_ref u;
  const char *url_text; /* for messages */
  hy_oci_params p;
  char *bearer; /* token from the WWW-Authenticate Bearer flow (hy__free) */
  int in_token; /* fetching it (no second challenge round) */
} oci_conn;

static void copy_value(char *dst, size_t cap, const char *v, size_t n) {
  while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' ||
               v[n - 1] == '\t'))
    n--;
  while (n && (*v == ' ' || *v == '\t'))
    v++, n--;
  if (n >= cap)
    n = cap - 1; /* longer values are refused by the caller where it matters */
  memcpy(dst, v, n);
  dst[n] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user) {
  http_res *res = user;
  const size_t n = size * nitems;
  if (n >= 5 && memcmp(buf, "HTTP/", 5) ==
                    0) { /* a new response (redirect, 100 Continue) */
    const char *sp = memchr(buf, ' ', n);
    res->status = sp && sp + 4 <= buf + n ? strtol(sp + 1, NULL, 10) : 0;
    res->hdr_bytes = 0;
    res->content_length = -1;
    res->location[0] = res->content_type[0] = res->www_auth[0] =
        res->docker_digest[0] = '\0';
  }
  res->hdr_bytes += n;
  if (res->hdr_bytes > HDR_BYTES_MAX) {
    snprintf(res->fail, sizeof res->fail, "response headers over %d bytes",
             HDR_BYTES_MAX);
    return 0;
  }
  const char *colon = memchr(buf, ':', n);
  if (!colon)
    return n;
  const size_t kn = (size_t)(colon - buf), vn = n - kn - 1;
  const char *v = colon + 1;
#define IS(k) (kn == sizeof(k) - 1 && strncasecmp(buf, k, kn) == 0)
  if (IS("location")) {
    if (vn >= sizeof res->location) {
      snprintf(res->fail, sizeof res->fail, "Location header over %d bytes",
               HDR_VALUE_MAX);
      return 0;
    }
    copy_value(res->location, sizeof res->location, v, vn);
  } else if (IS("content-type")) {
    copy_value(res->content_type, sizeof res->content_type, v, vn);
  } else if (IS("www-authenticate")) {
    copy_value(res->www_auth, sizeof res->www_auth, v, vn);
  } else if (IS("docker-content-digest")) {
    copy_value(res->docker_digest, sizeof res->docker_digest, v, vn);
  } else if (IS("content-length")) {
    char t[32];
    copy_value(t, sizeof t, v, vn);
    char *e;
    errno = 0;
    const long long cl = strtoll(t, &e, 10);
    res->content_length = (errno || *e || cl < 0 || e == t) ? -1 : cl;
    if (res->status >= 200 && res->status < 300 && res->mem_max &&
        cl > (long long)res->mem_max) {
      snprintf(res->fail, sizeof res->fail,
               "announced body of %lld bytes, over the %zu allowed", cl,
               res->mem_max);
      return 0;
    }
    if (res->status >= 200 && res->status < 300 && res->hash &&
        (uint64_t)cl > res->out_max) {
      snprintf(res->fail, sizeof res->fail,
               "announced %lld bytes, the manifest says %llu", cl,
               (unsigned long long)res->out_max);
      return 0;
    }
  }
#undef IS
  return n;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *user) {
  http_res *res = user;
  const size_t n = size * nitems;
  if (res->status < 200 ||
      res->status >= 300) { /* error body: keep the start, bound the rest */
    if (res->err_len < ERR_KEEP) {
      const size_t k = HY_MIN(n, (size_t)ERR_KEEP - res->err_len);
      memcpy(res->err + res->err_len, buf, k);
      res->err_len += k;
      res->err[res->err_len] = '\0';
    }
    res->err_total += n;
    if (res->err_total > SMALL_BODY_MAX) {
      snprintf(res->fail, sizeof res->fail, "error body over %d bytes",
               SMALL_BODY_MAX);
      return 0;
    }
    return n;
  }
  if (res->hash) { /* streamed to a file while hashing */
    if (n > res->out_max - res->out_len) {
      snprintf(res->fail, sizeof res->fail,
               "more than the %llu bytes the manifest announced",
               (unsigned long long)res->out_max);
      return 0;
    }
    for (size_t off = 0; off < n;) {
      const ssize_t w = write(res->out_fd, buf + off, n - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        snprintf(res->fail, sizeof res->fail, "writing the blob: %s",
                 strerror(errno));
        return 0;
      }
      off += (size_t)w;
    }
    hy__sha256_update(res->hash, buf, n);
    res->out_len += n;
    return n;
  }
  if (!res->mem_max) { /* body not wanted (POST / PUT answers): read and
                          dropped, bounded */
    res->err_total += n;
    if (res->err_total > SMALL_BODY_MAX) {
      snprintf(res->fail, sizeof res->fail, "answer body over %d bytes",
               SMALL_BODY_MAX);
      return 0;
    }
    return n;
  }
  if (n > res->mem_max - res->mem_len) {
    snprintf(res->fail, sizeof res->fail, "body over %zu bytes", res->mem_max);
    return 0;
  }
  if (res->mem_len + n + 1 > res->mem_cap) {
    size_t cap = res->mem_cap ? res->mem_cap : 4096;
    while (cap < res->mem_len + n + 1)
      cap *= 2;
    char *m = hy__realloc(res->mem, cap);
    if (!m) {
      snprintf(res->fail, sizeof res->fail, "out of memory");
      return 0;
    }
    res->mem = m;
    res->mem_cap = cap;
  }
  memcpy(res->mem + res->mem_len, buf, n);
  res->mem_len += n;
  res->mem[res->mem_len] = '\0';
  return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *user) {
  body_src *b = user;
  size_t n = size * nitems;
  if (n > b->len - b->off)
    n = (size_t)(b->len - b->off);
  if (n == 0)
    return 0;
  if (b->mem) {
    memcpy(buf, b->mem + b->off, n);
  } else {
    ssize_t r;
    do
      r = pread(b->fd, buf, n, (off_t)b->off);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
      return CURL_READFUNC_ABORT; /* the file shrank or failed */
    n = (size_t)r;
  }
  b->off += n;
  return n;
}

/* The request's URL is on the registry itself (credentials go nowhere else). */
static int same_origin(const oci_conn *c, const char *url) {
  const size_t n = strlen(c->u.base);
  return strncmp(url, c->u.base, n) == 0 && (url[n] == '/' || url[n] == '\0');
}

/* Text of an error answer: the distribution spec's
 * {"errors":[{"code","message"}]} when it parses, else the printable start of
 * the body. */
static void err_text(const http_res *res, char *out, size_t cap) {
  out[0] = '\0';
  json_object *o = json_tokener_parse(res->err);
  json_object *errs, *e0, *code, *msg;
  if (o && json_object_object_get_ex(o, "errors", &errs) &&
      json_object_is_type(errs, json_type_array) &&
      json_object_array_length(errs) > 0 &&
      (e0 = json_object_array_get_idx(errs, 0)) &&
      json_object_is_type(e0, json_type_object)) {
    const char *cs = json_object_object_get_ex(e0, "code", &code)
                         ? json_object_get_string(code)
                         : "";
    const char *ms = json_object_object_get_ex(e0, "message", &msg)
                         ? json_object_get_string(msg)
                         : "";
    snprintf(out, cap, "%.80s%s%.200s", cs ? cs : "",
             (cs && *cs && ms && *ms) ? ": " : "", ms ? ms : "");
  } else {
    size_t j = 0;
    for (size_t i = 0; i < res->err_len && j + 1 < cap && j < 200; i++)
      out[j++] = isprint((unsigned char)res->err[i]) ? res->err[i] : ' ';
    out[j] = '\0';
  }
  json_object_put(o);
  /* the text came from the network: keep it printable */
  for (char *q = out; *q; q++)
    if (!isprint((unsigned char)*q))
      *q = ' ';
}

typedef struct http_req {
  const char *method; /* GET HEAD POST PUT */
  const char *url;
  const char *accept, *content_type;
  body_src *body; /* PUT */
  int bulk;       /* a blob transfer: stall timeout instead of a total one */
  int token;      /* the token realm: basic credentials go there too */
} http_req;

static hy_status get_token(oci_conn *c, const char *challenge);
static json_object *parse_bounded(const char *s, size_t n);
static json_object *member(json_object *o, const char *key);

/* One request, following redirects for GET / HEAD; retried once after a Bearer
 * challenge. HY_OK when a response came back (res->status says which);
 * HY_ERR_IO naming the request otherwise. */
static hy_status http(oci_conn *c, const http_req *q, http_res *res) {
  for (int attempt = 0;; attempt++) {
    res->status = 0;
    res->hdr_bytes = 0;
    res->content_length = -1;
    res->mem_len = 0;
    res->err_len = res->err_total = 0;
    res->err[0] = res->fail[0] = '\0';
    if (q->body)
      q->body->off = 0;
    if (strlen(q->url) >= URL_MAX)
      return hy__error(HY_ERR_INVALID_ARG, "%s: URL too long", c->url_text);

    CURL *h = c->h;
    hy__curl.easy_reset(h);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL, *t;
    char line[HDR_VALUE_MAX + 64];
    int ok = 1;
#define ADD(s)                                                                 \
  ok = ok && ((t = hy__curl.slist_append(hdrs, s)) ? (hdrs = t, 1) : 0)
    if (q->accept) {
      snprintf(line, sizeof line, "Accept: %s", q->accept);
      ADD(line);
    }
    if (q->content_type) {
      snprintf(line, sizeof line, "Content-Type: %s", q->content_type);
      ADD(line);
    }
    ADD("Expect:"); /* no 100-continue round trip */
    const int mine = same_origin(c, q->url);
    if (mine && c->bearer) {
      snprintf(line, sizeof line, "Authorization: Bearer %s", c->bearer);
      ADD(line);
    }
#undef ADD
    if (!ok) {
      hy__curl.slist_free_all(hdrs);
      return hy__error(HY_ERR_NOMEM, "%s: out of memory", c->url_text);
    }
    const int https_only = strncmp(c->u.base, "https:", 6) == 0;
    const long tmo_ms =
        (long)(c->p.timeout_s > 0 ? c->p.timeout_s * 1000.0 : 60000.0);
    hy__curl.easy_setopt(h, CURLOPT_URL, q->url);
    hy__curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    hy__curl.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
                         https_only ? "https" : "http,https");
    hy__curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    hy__curl.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    hy__curl.easy_setopt(h, CURLOPT_USERAGENT, "hotyolo/" HY_VERSION_STRING);
    hy__curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    hy__curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    hy__curl.easy_setopt(h, CURLOPT_HEADERDATA, res);
    hy__curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    hy__curl.easy_setopt(h, CURLOPT_WRITEDATA, res);
    hy__curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, tmo_ms);
    if (q->bulk) { /* large transfers: fail when stalled for the timeout, not
                      after it */
      hy__curl.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      hy__curl.easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                           HY_MAX(1L, tmo_ms / 1000));
    } else {
      hy__curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo_ms);
    }
    if (((mine && !c->bearer) || q->token) && c->p.username) {
      hy__curl.easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
      hy__curl.easy_setopt(h, CURLOPT_USERNAME, c->p.username);
      hy__curl.easy_setopt(h, CURLOPT_PASSWORD,
                           c->p.password ? c->p.password : "");
    }
    if (!strcmp(q->method, "GET") || !strcmp(q->method, "HEAD")) {
      /* Distribution may redirect blob reads to storage; credentials stay with
       * the registry (curl drops them on another host) */
      hy__curl.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
      hy__curl.easy_setopt(h, CURLOPT_MAXREDIRS, (long)REDIRECTS_MAX);
      if (!strcmp(q->method, "HEAD"))
        hy__curl.easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(q->method, "POST")) {
      hy__curl.easy_setopt(h, CURLOPT_POST, 1L);
      hy__curl.easy_setopt(h, CURLOPT_POSTFIELDS, "");
      hy__curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    } else { /* PUT */
      HY_ASSERT(q->body);
      hy__curl.easy_setopt(h, CURLOPT_UPLOAD, 1L);
      hy__curl.easy_setopt(h, CURLOPT_READFUNCTION, on_read);
      hy__curl.easy_setopt(h, CURLOPT_READDATA, q->body);
      hy__curl.easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                           (curl_off_t)q->body->len);
    }
    const CURLcode cc = hy__curl.easy_perform(h);
    hy__curl.slist_free_all(hdrs);
    if (cc != CURLE_OK) {
      if (res->fail[0])
        return hy__error(HY_ERR_FORMAT, "%s: %s %s: %s", c->url_text, q->method,
                         q->url, res->fail);
      if (cc == CURLE_TOO_MANY_REDIRECTS)
        return hy__error(HY_ERR_FORMAT, "%s: %s %s: more than %d redirects",
                         c->url_text, q->method, q->url, REDIRECTS_MAX);
      return hy__error(HY_ERR_IO, "%s: %s %s: %s", c->url_text, q->method,
                       q->url, errbuf[0] ? errbuf : hy__curl.easy_strerror(cc));
    }
    if (res->status == 401 && attempt == 0 && mine &&
        strncasecmp(res->www_auth, "Bearer ", 7) == 0 && !c->bearer &&
        !c->in_token) {
      const hy_status st = get_token(c, res->www_auth);
      if (st != HY_OK)
        return st;
      continue;
    }
    return HY_OK;
  }
}

static hy_status http_fail(oci_conn *c, const http_req *q,
                           const http_res *res) {
  char t[320];
  err_text(res, t, sizeof t);
  const hy_status st = res->status == 404 ? HY_ERR_NOT_FOUND
                       : (res->status == 401 || res->status == 403)
                           ? HY_ERR_INVALID_ARG
                           : HY_ERR_IO;
  return hy__error(st, "%s: %s %s: HTTP %ld%s%s%s", c->url_text, q->method,
                   q->url, res->status, t[0] ? " (" : "", t, t[0] ? ")" : "");
}

static void res_deinit(http_res *res) {
  hy__free(res->mem);
  memset(res, 0, sizeof *res);
}

// --- Bearer token flow (WWW-Authenticate: Bearer
// realm="...",service="...",scope="...") -----

/* Value of key in a challenge's comma-separated key="value" list, into out. */
static int challenge_param(const char *ch, const char *key, char *out,
                           size_t cap) {
  const size_t kn = strlen(key);
  for (const char *s = ch; *s;) {
    while (*s == ' ' || *s == ',')
      s++;
    const char *eq = strchr(s, '=');
    if (!eq)
      return 0;
    const int match = (size_t)(eq - s) == kn && strncasecmp(s, key, kn) == 0;
    const char *v = eq + 1, *ve;
    if (*v == '"') {
      ve = strchr(++v, '"');
      if (!ve)
        return 0;
    } else {
      ve = v + strcspn(v, ",");
    }
    if (match) {
      if ((size_t)(ve - v) >= cap)
        return 0;
      memcpy(out, v, (size_t)(ve - v));
      out[ve - v] = '\0';
      return 1;
    }
    s = *ve == '"' ? ve + 1 : ve;
  }
  return 0;
}

static int token_ok(const char *t) {
  if (!*t || strlen(t) > 16384)
    return 0;
  for (; *t; t++)
    if (!isalnum((unsigned char)*t) && !strchr("-._~+/=", *t))
      return 0;
  return 1;
}

static hy_status get_token(oci_conn *c, const char *challenge) {
  char realm[2048], service[512] = "", scope[1024] = "", url[URL_MAX];
  const char *ch = challenge + 7; /* after "Bearer " */
  if (!challenge_param(ch, "realm", realm, sizeof realm))
    return hy__error(HY_ERR_FORMAT,
                     "%s: Bearer challenge without a usable realm",
                     c->url_text);
  challenge_param(ch, "service", service, sizeof service);
  challenge_param(ch, "scope", scope, sizeof scope);
  const int realm_https = !strncmp(realm, "https://", 8);
  const int realm_http =
      !strncmp(realm, "http://", 7) && !strncmp(c->u.base, "http:", 5);
  int printable = 1;
  for (const char *q = realm; *q; q++)
    printable &= *q > ' ' && *q < 0x7f;
  if (!(realm_https || realm_http) || !printable)
    return hy__error(
        HY_ERR_FORMAT, "%s: Bearer realm \"%.200s\" is not an http(s) URL%s",
        c->url_text, realm,
        realm_http ? "" : " (plain http only for a plain-http registry)");
  char *es = hy__curl.easy_escape(c->h, service, 0),
       *esc = hy__curl.easy_escape(c->h, scope, 0);
  if (!es || !esc) {
    hy__curl.free(es), hy__curl.free(esc);
    return hy__error(HY_ERR_NOMEM, "%s: out of memory", c->url_text);
  }
  snprintf(url, sizeof url, "%s%cservice=%s&scope=%s", realm,
           strchr(realm, '?') ? '&' : '?', es, esc);
  hy__curl.free(es);
  hy__curl.free(esc);
  http_req q = {.method = "GET", .url = url, .token = 1};
  http_res res = {.mem_max = SMALL_BODY_MAX};
  c->in_token = 1;
  hy_status st = http(c, &q, &res);
  c->in_token = 0;
  if (st == HY_OK && res.status != 200)
    st = http_fail(c, &q, &res);
  if (st == HY_OK) {
    json_object *o = parse_bounded(res.mem ? res.mem : "", res.mem_len);
    json_object *t = o ? member(o, "token") : NULL;
    if (!t)
      t = o ? member(o, "access_token") : NULL;
    const char *ts = t && json_object_is_type(t, json_type_string)
                         ? json_object_get_string(t)
                         : NULL;
    if (!ts || !token_ok(ts))
      st = hy__error(HY_ERR_FORMAT, "%s: GET %s: no usable token in the answer",
                     c->url_text, realm);
    else if (!(c->bearer = hy__strdup(ts)))
      st = hy__error(HY_ERR_NOMEM, "%s: out of memory", c->url_text);
    json_object_put(o);
  }
  res_deinit(&res);
  return st;
}

// --- blobs and manifests
// ------------------------------------------------------------------

static hy_status conn_open(const char *oci_url, const hy_oci_params *p,
                           oci_conn *c) {
  memset(c, 0, sizeof *c);
  c->p = p ? *p : hy_oci_default_params();
  c->url_text = oci_url;
  hy_status st = url_parse(oci_url, &c->p, &c->u);
  if (st != HY_OK)
    return st;
  if ((st = hy__curl_load()) != HY_OK)
    return st;
  c->h = hy__curl.easy_init();
  if (!c->h)
    return hy__error(HY_ERR_NOMEM, "%s: curl_easy_init failed", oci_url);
  return HY_OK;
}

static void conn_close(oci_conn *c) {
  if (c->h)
    hy__curl.easy_cleanup(c->h);
  if (c->bearer) {
    memset(c->bearer, 0, strlen(c->bearer));
    hy__free(c->bearer);
  }
  memset(c, 0, sizeof *c);
}

/* 1 when the registry has the blob, 0 when not. */
static hy_status blob_exists(oci_conn *c, const char *digest, int *exists) {
  char url[URL_MAX];
  snprintf(url, sizeof url, "%s/v2/%s/blobs/%s", c->u.base, c->u.repo, digest);
  http_req q = {.method = "HEAD", .url = url};
  http_res res = {0};
  hy_status st = http(c, &q, &res);
  if (st == HY_OK) {
    if (res.status == 200)
      *exists = 1;
    else if (res.status == 404)
      *exists = 0;
    else
      st = http_fail(c, &q, &res);
  }
  res_deinit(&res);
  return st;
}

/* POST an upload session, then PUT the whole body with ?digest= (monolithic
 * upload). */
static hy_status blob_upload(oci_conn *c, const char *digest, body_src *body) {
  char url[URL_MAX], put[URL_MAX + 128];
  snprintf(url, sizeof url, "%s/v2/%s/blobs/uploads/", c->u.base, c->u.repo);
  http_req q = {.method = "POST", .url = url};
  http_res res = {0};
  hy_status st = http(c, &q, &res);
  if (st != HY_OK)
    goto done;
  if (res.status != 202) {
    st = http_fail(c, &q, &res);
    goto done;
  }
  /* Location: absolute (http[s]://...) or absolute-path ("/v2/...") */
  const char *loc = res.location;
  for (const char *s = loc; *s; s++)
    if ((unsigned char)*s <= ' ' || *s == 0x7f)
      loc = "";
  if (loc[0] == '/' && loc[1] != '/') {
    snprintf(put, sizeof put, "%s%s", c->u.base, loc);
  } else if (!strncmp(loc, "https://", 8) ||
             (!strncmp(loc, "http://", 7) && strncmp(c->u.base, "https:", 6))) {
    snprintf(put, sizeof put, "%s", loc);
  } else {
    st = hy__error(HY_ERR_FORMAT,
                   "%s: POST %s: missing or unusable Location in the answer",
                   c->url_text, url);
    goto done;
  }
  const size_t n = strlen(put);
  snprintf(put + n, sizeof put - n, "%cdigest=%s", strchr(put, '?') ? '&' : '?',
           digest);
  http_req pq = {.method = "PUT",
                 .url = put,
                 .content_type = "application/octet-stream",
                 .body = body,
                 .bulk = 1};
  if ((st = http(c, &pq, &res)) != HY_OK)
    goto done;
  if (res.status != 201) {
    st = http_fail(c, &pq, &res);
    goto done;
  }
done:
  res_deinit(&res);
  return st;
}

/* Pushes a blob unless the registry has it; *skipped tells which. */
static hy_status blob_push(oci_conn *c, const char *digest, body_src *body,
                           int *skipped) {
  int exists = 0;
  hy_status st = blob_exists(c, digest, &exists);
  if (st != HY_OK)
    return st;
  *skipped = exists;
  if (exists)
    return HY_OK;
  return blob_upload(c, digest, body);
}

/* Layer media type for a weights format. */
static const char *weights_type(const char *format) {
  if (format && !strcmp(format, "safetensors"))
    return MT_WEIGHTS ".safetensors";
  if (format && !strcmp(format, "pt"))
    return MT_WEIGHTS ".pt";
  if (format && !strcmp(format, "onnx"))
    return MT_WEIGHTS ".onnx";
  return MT_WEIGHTS;
}

static const char *const weights_types[] = {
    MT_WEIGHTS, MT_WEIGHTS ".safetensors", MT_WEIGHTS ".pt",
    MT_WEIGHTS ".onnx"};

static json_object *descriptor(const char *mt, const char *digest,
                               uint64_t size) {
  json_object *d = json_object_new_object();
  if (!d)
    return NULL;
  json_object_object_add(d, "mediaType", json_object_new_string(mt));
  json_object_object_add(d, "digest", json_object_new_string(digest));
  json_object_object_add(d, "size", json_object_new_int64((int64_t)size));
  return d;
}

// --- push
// ---------------------------------------------------------------------------------

hy_oci_params hy_oci_default_params(void) {
  hy_oci_params p;
  memset(&p, 0, sizeof p);
  p.timeout_s = 60;
  return p;
}

hy_status hy_registry_push(hy_registry *r, const char *ref, const char *oci_url,
                           const hy_oci_params *p) {
  if (!r || !ref || !oci_url)
    return hy__error(HY_ERR_INVALID_ARG, "hy_registry_push: NULL argument");
  oci_conn c;
  char *blob_path = NULL, *hex = NULL, *entry = NULL;
  const char *config = NULL, *manifest = NULL;
  json_object *cfg = NULL, *man = NULL;
  int fd = -1;
  hy_status st = conn_open(oci_url, p, &c);
  if (st != HY_OK)
    goto fail;
  if ((st = hy__registry_entry_for_push(r, ref, &blob_path, &hex, &entry)) !=
      HY_OK)
    goto fail;

  /* the config: the entry without what is local to this registry */
  cfg = json_tokener_parse(entry);
  if (!cfg || !json_object_is_type(cfg, json_type_object)) {
    st = hy__error(HY_ERR_FORMAT, "%s: the entry of %s is not a JSON object",
                   hy_registry_dir(r), ref);
    goto fail;
  }
  json_object_object_del(cfg, "blob");
  json_object_object_del(cfg, "aliases");
  json_object_object_del(cfg, "bound_by");
  config = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN);
  json_object *fo = NULL, *no = NULL, *vo = NULL;
  json_object_object_get_ex(cfg, "format", &fo);
  json_object_object_get_ex(cfg, "name", &no);
  json_object_object_get_ex(cfg, "version", &vo);
  const char *format = fo ? json_object_get_string(fo) : NULL;

  uint8_t d[HY_SHA256_LEN];
  char cfg_digest[8 + HY_SHA256_HEX_LEN] = "sha256:",
                      weights_digest[8 + HY_SHA256_HEX_LEN];
  if ((st = hy__sha256_buf(config, strlen(config), d)) != HY_OK)
    goto fail;
  hy__sha256_hex(d, cfg_digest + 7);
  snprintf(weights_digest, sizeof weights_digest, "sha256:%s", hex);

  fd = open(blob_path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    st = hy__error(HY_ERR_IO, "%s: %s", blob_path, strerror(errno));
    goto fail;
  }

  /* blobs: the weights (streamed from the store), then the config */
  int skipped_w = 0, skipped_c = 0;
  body_src wb = {.fd = fd, .len = (uint64_t)sb.st_size};
  if ((st = blob_push(&c, weights_digest, &wb, &skipped_w)) != HY_OK)
    goto fail;
  body_src cb = {
      .mem = (const uint8_t *)config, .fd = -1, .len = strlen(config)};
  if ((st = blob_push(&c, cfg_digest, &cb, &skipped_c)) != HY_OK)
    goto fail;

  /* the manifest */
  char title[160];
  const char *ext = strcmp(weights_type(format), MT_WEIGHTS)
                        ? strrchr(weights_type(format), '.')
                        : "";
  snprintf(title, sizeof title, "%.63s-v%d%s",
           no ? json_object_get_string(no) : "model",
           vo ? json_object_get_int(vo) : 0, ext);
  man = json_object_new_object();
  json_object *layers = json_object_new_array();
  json_object *cd = descriptor(MT_CONFIG, cfg_digest, strlen(config));
  json_object *ld =
      descriptor(weights_type(format), weights_digest, (uint64_t)sb.st_size);
  json_object *ann = json_object_new_object();
  if (!man || !layers || !cd || !ld || !ann) {
    json_object_put(layers), json_object_put(cd), json_object_put(ld),
        json_object_put(ann);
    st = hy__error(HY_ERR_NOMEM, "%s: out of memory", oci_url);
    goto fail;
  }
  json_object_object_add(ann, ANN_TITLE, json_object_new_string(title));
  json_object_object_add(ld, "annotations", ann);
  json_object_array_add(layers, ld);
  json_object_object_add(man, "schemaVersion", json_object_new_int(2));
  json_object_object_add(man, "mediaType", json_object_new_string(MT_MANIFEST));
  json_object_object_add(man, "artifactType",
                         json_object_new_string(MT_ARTIFACT));
  json_object_object_add(man, "config", cd);
  json_object_object_add(man, "layers", layers);
  manifest = json_object_to_json_string_ext(man, JSON_C_TO_STRING_PLAIN);

  char url[URL_MAX];
  snprintf(url, sizeof url, "%s/v2/%s/manifests/%s", c.u.base, c.u.repo,
           c.u.ref);
  body_src mb = {
      .mem = (const uint8_t *)manifest, .fd = -1, .len = strlen(manifest)};
  http_req q = {
      .method = "PUT", .url = url, .content_type = MT_MANIFEST, .body = &mb};
  http_res res = {0};
  st = http(&c, &q, &res);
  if (st == HY_OK && res.status != 201)
    st = http_fail(&c, &q, &res);
  res_deinit(&res);
  if (st != HY_OK)
    goto fail;
  hy__log(HY_LOG_INFO, "pushed %s to %s (weights %s %s, config %s)", ref,
          oci_url, weights_digest, skipped_w ? "already there" : "uploaded",
          skipped_c ? "already there" : "uploaded");
fail:
  if (fd >= 0)
    close(fd);
  json_object_put(cfg);
  json_object_put(man);
  hy__free(blob_path);
  hy__free(hex);
  hy__free(entry);
  conn_close(&c);
  return st;
}

// --- pull
// ---------------------------------------------------------------------------------

static json_object *member(json_object *o, const char *key) {
  json_object *v = NULL;
  return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static json_object *parse_bounded(const char *s, size_t n) {
  json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
  if (!tok)
    return NULL;
  json_object *o = json_tokener_parse_ex(tok, s, (int)n);
  if (json_tokener_get_error(tok) != json_tokener_success ||
      json_tokener_get_parse_end(tok) != n) {
    json_object_put(o);
    o = NULL;
  }
  json_tokener_free(tok);
  return o;
}

typedef struct desc {
  char media_type[96];
  char digest[8 + HY_SHA256_HEX_LEN];
  uint64_t size;
} desc;

/* A descriptor {mediaType, digest, size, ...} with its media type in allowed[]
 * and 0 < size <= max. */
static hy_status desc_read(json_object *o, const char *what,
                           const char *const *allowed, size_t n_allowed,
                           uint64_t max, const char *url, desc *d) {
  if (!o || !json_object_is_type(o, json_type_object))
    return hy__error(HY_ERR_FORMAT, "%s: manifest %s is not an object", url,
                     what);
  json_object *mt = member(o, "mediaType"), *dg = member(o, "digest"),
              *sz = member(o, "size");
  const char *mts = mt && json_object_is_type(mt, json_type_string)
                        ? json_object_get_string(mt)
                        : NULL;
  size_t i = 0;
  while (mts && i < n_allowed && strcmp(mts, allowed[i]))
    i++;
  if (!mts || i == n_allowed)
    return hy__error(HY_ERR_FORMAT,
                     "%s: manifest %s has media type \"%.96s\", expected %s%s",
                     url, what, mts ? mts : "(none)", allowed[0],
                     n_allowed > 1 ? "[...]" : "");
  const char *ds = dg && json_object_is_type(dg, json_type_string)
                       ? json_object_get_string(dg)
                       : NULL;
  if (!digest_ok(ds))
    return hy__error(HY_ERR_FORMAT,
                     "%s: manifest %s digest is not sha256:<64 hex>", url,
                     what);
  if (!sz || !json_object_is_type(sz, json_type_int) ||
      json_object_get_int64(sz) <= 0 ||
      (uint64_t)json_object_get_int64(sz) > max)
    return hy__error(HY_ERR_FORMAT,
                     "%s: manifest %s size must be 1..%llu bytes", url, what,
                     (unsigned long long)max);
  snprintf(d->media_type, sizeof d->media_type, "%s", mts);
  snprintf(d->digest, sizeof d->digest, "%s", ds);
  d->size = (uint64_t)json_object_get_int64(sz);
  return HY_OK;
}

/* Checks the manifest against the allow-list; fills the config and the layer
 * descriptors. */
static hy_status manifest_check(const char *body, size_t n, const char *url,
                                desc *config, desc *layer) {
  json_object *m = parse_bounded(body, n);
  hy_status st = HY_OK;
  if (!m || !json_object_is_type(m, json_type_object)) {
    st = hy__error(HY_ERR_FORMAT, "%s: the manifest is not a JSON object", url);
    goto done;
  }
  json_object *sv = member(m, "schemaVersion"), *mt = member(m, "mediaType"),
              *at = member(m, "artifactType");
  if (!sv || !json_object_is_type(sv, json_type_int) ||
      json_object_get_int(sv) != 2) {
    st = hy__error(HY_ERR_FORMAT, "%s: manifest schemaVersion must be 2", url);
    goto done;
  }
  if (mt && (!json_object_is_type(mt, json_type_string) ||
             strcmp(json_object_get_string(mt), MT_MANIFEST))) {
    st = hy__error(HY_ERR_FORMAT, "%s: manifest mediaType \"%.96s\" is not %s",
                   url, json_object_get_string(mt), MT_MANIFEST);
    goto done;
  }
  if (at && (!json_object_is_type(at, json_type_string) ||
             strcmp(json_object_get_string(at), MT_ARTIFACT))) {
    st = hy__error(HY_ERR_FORMAT,
                   "%s: artifactType \"%.96s\" is not a hotyolo model (%s)",
                   url, json_object_get_string(at), MT_ARTIFACT);
    goto done;
  }
  static const char *const cfg_types[] = {MT_CONFIG};
  if ((st = desc_read(member(m, "config"), "config", cfg_types, 1, CONFIG_MAX,
                      url, config)) != HY_OK)
    goto done;
  json_object *ls = member(m, "layers");
  if (!ls || !json_object_is_type(ls, json_type_array) ||
      json_object_array_length(ls) != 1) {
    st = hy__error(HY_ERR_FORMAT,
                   "%s: the manifest must have exactly one layer (the weights)",
                   url);
    goto done;
  }
  st = desc_read(json_object_array_get_idx(ls, 0), "layer", weights_types,
                 HY_ARRAY_LEN(weights_types), LAYER_MAX, url, layer);
done:
  json_object_put(m);
  return st;
}

/* The config reduced to what a pull takes from it (scenario, metrics, tags),
 * each checked; format, record ... come from the weights file itself. *out:
 * hy__free. */
static hy_status config_sanitize(const char *body, size_t n, const char *url,
                                 char **out) {
  json_object *c = parse_bounded(body, n), *o = json_object_new_object();
  hy_status st = HY_OK;
  if (!o) {
    st = hy__error(HY_ERR_NOMEM, "%s: out of memory", url);
    goto done;
  }
  if (!c || !json_object_is_type(c, json_type_object)) {
    st = hy__error(HY_ERR_FORMAT, "%s: the config blob is not a JSON object",
                   url);
    goto done;
  }
  json_object *sc = member(c, "scenario"), *me = member(c, "metrics"),
              *tg = member(c, "tags");
  if (sc && !json_object_is_type(sc, json_type_null)) {
    if (!json_object_is_type(sc, json_type_string) ||
        json_object_get_string_len(sc) > HY_REG_SCENARIO_MAX) {
      st = hy__error(HY_ERR_FORMAT,
                     "%s: config scenario must be text of at most %d bytes",
                     url, HY_REG_SCENARIO_MAX);
      goto done;
    }
    json_object_object_add(o, "scenario", json_object_get(sc));
  }
  if (me && !json_object_is_type(me, json_type_null)) {
    if (!json_object_is_type(me, json_type_object) ||
        json_object_object_length(me) > HY_REGISTRY_MAX_METRICS) {
      st = hy__error(
          HY_ERR_FORMAT,
          "%s: config metrics must be an object of at most %d numbers", url,
          HY_REGISTRY_MAX_METRICS);
      goto done;
    }
    json_object *mo = json_object_new_object();
    json_object_object_add(o, "metrics", mo);
    json_object_object_foreach(me, k, v) {
      const int num = json_object_is_type(v, json_type_double) ||
                      json_object_is_type(v, json_type_int);
      if (!num || !isfinite(json_object_get_double(v)) || !*k ||
          strlen(k) > HY_REG_KEY_MAX) {
        st = hy__error(HY_ERR_FORMAT,
                       "%s: config metric \"%.64s\" must be a finite number",
                       url, k);
        goto done;
      }
      json_object_object_add(mo, k,
                             json_object_new_double(json_object_get_double(v)));
    }
  }
  if (tg && !json_object_is_type(tg, json_type_null)) {
    if (!json_object_is_type(tg, json_type_array) ||
        json_object_array_length(tg) > HY_REGISTRY_MAX_TAGS) {
      st = hy__error(HY_ERR_FORMAT,
                     "%s: config tags must be an array of at most %d strings",
                     url, HY_REGISTRY_MAX_TAGS);
      goto done;
    }
    json_object *ta = json_object_new_array();
    json_object_object_add(o, "tags", ta);
    for (size_t i = 0; i < json_object_array_length(tg); i++) {
      json_object *t = json_object_array_get_idx(tg, i);
      if (!json_object_is_type(t, json_type_string) ||
          json_object_get_string_len(t) == 0 ||
          json_object_get_string_len(t) > HY_REG_KEY_MAX) {
        st = hy__error(HY_ERR_FORMAT,
                       "%s: config tag %zu must be text of 1..%d bytes", url, i,
                       HY_REG_KEY_MAX);
        goto done;
      }
      json_object_array_add(ta, json_object_get(t));
    }
  }
  *out = hy__strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  if (!*out)
    st = hy__error(HY_ERR_NOMEM, "%s: out of memory", url);
done:
  json_object_put(c);
  json_object_put(o);
  return st;
}

/* GET a small blob into memory (at most d->size bytes) and check its digest. */
static hy_status blob_get_small(oci_conn *c, const desc *d, char **body) {
  char url[URL_MAX];
  snprintf(url, sizeof url, "%s/v2/%s/blobs/%s", c->u.base, c->u.repo,
           d->digest);
  http_req q = {.method = "GET", .url = url};
  http_res res = {.mem_max = (size_t)d->size};
  hy_status st = http(c, &q, &res);
  if (st != HY_OK)
    goto done;
  if (res.status != 200) {
    st = http_fail(c, &q, &res);
    goto done;
  }
  uint8_t h[HY_SHA256_LEN];
  char got[HY_SHA256_HEX_LEN + 1];
  if ((st = hy__sha256_buf(res.mem ? res.mem : "", res.mem_len, h)) != HY_OK)
    goto done;
  hy__sha256_hex(h, got);
  if (res.mem_len != d->size || strcmp(got, d->digest + 7)) {
    st = hy__error(HY_ERR_FORMAT,
                   "%s: blob %s came back as sha256:%s (%zu bytes): refused",
                   c->url_text, d->digest, got, res.mem_len);
    goto done;
  }
  *body = res.mem;
  res.mem = NULL;
done:
  res_deinit(&res);
  return st;
}

/* NAME's version holding digest_hex, 0 when none. */
static int local_version(hy_registry *r, const char *name, const char *digest) {
  char *list = NULL;
  int v = 0;
  if (hy_registry_list(r, &list) != HY_OK)
    return 0;
  json_object *a = json_tokener_parse(list);
  for (size_t i = 0; a && json_object_is_type(a, json_type_array) &&
                     i < json_object_array_length(a);
       i++) {
    json_object *e = json_object_array_get_idx(a, i), *n = member(e, "name"),
                *d = member(e, "digest"), *ver = member(e, "version");
    if (n && d && ver && !strcmp(json_object_get_string(n), name) &&
        !strcmp(json_object_get_string(d), digest))
      v = json_object_get_int(ver);
  }
  json_object_put(a);
  hy_free(list);
  return v;
}

hy_status hy_registry_pull(hy_registry *r, const char *oci_url,
                           const char *name, const hy_oci_params *p,
                           int *version_out) {
  if (!r || !oci_url || !name)
    return hy__error(HY_ERR_INVALID_ARG, "hy_registry_pull: NULL argument");
  if (!hy__registry_name_ok(name))
    return hy__error(
        HY_ERR_INVALID_ARG,
        "\"%.80s\": bad model name (letters, digits, '.', '_', '-')", name);
  oci_conn c;
  http_res res = {0};
  char *config = NULL, *sane = NULL, *tmp = NULL;
  int fd = -1;
  hy__sha256_ctx hash = {0};
  hy_status st = conn_open(oci_url, p, &c);
  if (st != HY_OK)
    goto fail;

  /* manifest */
  char url[URL_MAX];
  snprintf(url, sizeof url, "%s/v2/%s/manifests/%s", c.u.base, c.u.repo,
           c.u.ref);
  http_req q = {.method = "GET", .url = url, .accept = MT_MANIFEST};
  res.mem_max = MANIFEST_MAX;
  if ((st = http(&c, &q, &res)) != HY_OK)
    goto fail;
  if (res.status != 200) {
    st = http_fail(&c, &q, &res);
    goto fail;
  }
  char ct[256];
  copy_value(ct, sizeof ct, res.content_type, strcspn(res.content_type, ";"));
  if (strcmp(ct, MT_MANIFEST)) {
    st = hy__error(HY_ERR_FORMAT,
                   "%s: the manifest's media type is \"%.96s\", expected %s",
                   oci_url, ct, MT_MANIFEST);
    goto fail;
  }
  if (c.u.by_digest) { /* pinned: the manifest itself must hash to the reference
                        */
    uint8_t h[HY_SHA256_LEN];
    char got[HY_SHA256_HEX_LEN + 1];
    if ((st = hy__sha256_buf(res.mem ? res.mem : "", res.mem_len, h)) != HY_OK)
      goto fail;
    hy__sha256_hex(h, got);
    if (strcmp(got, c.u.ref + 7)) {
      st = hy__error(HY_ERR_FORMAT,
                     "%s: the manifest is sha256:%s, not %s: refused", oci_url,
                     got, c.u.ref);
      goto fail;
    }
  }
  desc cd, ld;
  if ((st = manifest_check(res.mem ? res.mem : "", res.mem_len, oci_url, &cd,
                           &ld)) != HY_OK)
    goto fail;

  /* config */
  if ((st = blob_get_small(&c, &cd, &config)) != HY_OK)
    goto fail;
  if ((st = config_sanitize(config, cd.size, oci_url, &sane)) != HY_OK)
    goto fail;

  const int have = local_version(r, name, ld.digest);
  if (have > 0) {
    hy__log(HY_LOG_INFO, "%s: %s@%d holds %s already", oci_url, name, have,
            ld.digest);
    if (version_out)
      *version_out = have;
    goto fail; /* st == HY_OK */
  }

  /* the weights, streamed into DIR/tmp while hashing */
  if ((st = hy__registry_tmp_open(r, "pull", &fd, &tmp)) != HY_OK)
    goto fail;
  if ((st = hy__sha256_init(&hash)) != HY_OK)
    goto fail;
  snprintf(url, sizeof url, "%s/v2/%s/blobs/%s", c.u.base, c.u.repo, ld.digest);
  http_req bq = {.method = "GET", .url = url, .bulk = 1};
  res_deinit(&res);
  res.out_fd = fd;
  res.hash = &hash;
  res.out_max = ld.size;
  if ((st = http(&c, &bq, &res)) != HY_OK)
    goto fail;
  if (res.status != 200) {
    st = http_fail(&c, &bq, &res);
    goto fail;
  }
  uint8_t h[HY_SHA256_LEN];
  char got[HY_SHA256_HEX_LEN + 1];
  st = hy__sha256_final(&hash, h);
  hash.ctx = NULL;
  if (st != HY_OK)
    goto fail;
  hy__sha256_hex(h, got);
  if (res.out_len != ld.size || strcmp(got, ld.digest + 7)) {
    st = hy__error(
        HY_ERR_FORMAT,
        "%s: blob %s came back as sha256:%s (%llu of %llu bytes): refused",
        oci_url, ld.digest, got, (unsigned long long)res.out_len,
        (unsigned long long)ld.size);
    goto fail;
  }
  hy_registry_add_params ap = hy_registry_add_default_params();
  ap.name = name;
  int v = 0;
  st = hy__registry_add_blob(r, tmp, ld.digest + 7, sane, &ap, 1, &v);
  hy__free(tmp); /* renamed or removed by add_blob */
  tmp = NULL;
  if (st != HY_OK)
    goto fail;
  hy__log(HY_LOG_INFO, "pulled %s as %s@%d (%s)", oci_url, name, v, ld.digest);
  if (version_out)
    *version_out = v;
fail:
  if (hash.ctx)
    hy__sha256_abort(&hash);
  if (tmp) {
    unlink(tmp);
    hy__free(tmp);
  }
  if (fd >= 0)
    close(fd);
  res_deinit(&res);
  hy__free(config);
  hy__free(sane);
  conn_close(&c);
  return st;
}

// --- the parsers, for fuzzing (oci_parse.h) ----------------------------------------------------

hy_status hy__oci_check_manifest(const char *body, size_t n, const char *url) {
  desc config, layer;
  return manifest_check(body, n, url, &config, &layer);
}

hy_status hy__oci_check_config(const char *body, size_t n, const char *url, char **out) {
  return config_sanitize(body, n, url, out);
}

hy_status hy__oci_check_url(const char *url) {
  hy_oci_params p = hy_oci_default_params();
  oci_ref u;
  return url_parse(url, &p, &u);
}

int hy__oci_check_challenge(const char *challenge) {
  char realm[HDR_VALUE_MAX], service[HDR_VALUE_MAX], scope[HDR_VALUE_MAX];
  const int r = challenge_param(challenge, "realm", realm, sizeof realm);
  (void)challenge_param(challenge, "service", service, sizeof service);
  (void)challenge_param(challenge, "scope", scope, sizeof scope);
  return r;
}
