/* Packed-weights cache: a .pt / ONNX source's fused, packed safetensors (hy_convert --fuse),
 * kept under the user's cache directory and mapped by later loads (docs/formats.md
 * "Packed-weights cache").
 *
 * Key: sha256 of (library version, packed layout, real path, dev, inode, size, mtime, ctime)
 * of the source -> "<64 hex>.safetensors". Finding an entry costs a stat, not a hash of the
 * source. The entry records the source's content sha256 (hotyolo.source_sha256); it is
 * checked only when the stat is "racy" (the source changed less than RACY_S before the entry
 * was stamped, when one timestamp tick could hide a second write), as git does for its index.
 * Entry mtime = when its content was known to match (set explicitly), atime = last use (LRU).
 * Writers go through a temporary file + fsync + rename (hy__st_write), so readers see a
 * whole entry or none; two processes filling the same key write the same bytes. */
#include "model/pcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend_impl.h"
#include "core/sha256.h"
#include "hotyolo/pcache.h"
#include "io/safetensors.h"
#include "io/wfile.h"
#include "model/model_impl.h"

#define RACY_S 2.0                          /* timestamp granularity margin, seconds */
#define DEFAULT_MAX ((uint64_t)1 << 30)     /* HOTYOLO_CACHE_MAX default: 1 GiB */
#define MAX_SCAN 100000                     /* entries looked at by one eviction pass */
#define TMP_STALE_S 3600                    /* a writer's temporary file older than this died */
#define SUFFIX ".safetensors"

/* ---- directory and key -------------------------------------------------------------- */
hy_status hy_pcache_dir(char *buf, size_t len) {
    if (!buf || !len) return hy__error(HY_ERR_INVALID_ARG, "hy_pcache_dir: buffer required");
    const char *d = getenv("HOTYOLO_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int n;
    if (d && d[0]) n = snprintf(buf, len, "%s", d);
    else if (x && x[0] == '/') n = snprintf(buf, len, "%s/hotyolo/packed", x); /* XDG: absolute only */
    else if (h && h[0]) n = snprintf(buf, len, "%s/.cache/hotyolo/packed", h);
    else return hy__error(HY_ERR_NOT_FOUND, "no cache directory: set HOTYOLO_CACHE_DIR or HOME");
    if (n < 0 || (size_t)n >= len) return hy__error(HY_ERR_INVALID_ARG, "cache directory path too long");
    return HY_OK;
}

static double ts(const struct timespec *t) { return (double)t->tv_sec + (double)t->tv_nsec * 1e-9; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return ts(&t);
}

static const char *layout_id(void) {
    const struct hy__backend_i *bi = hy__backend_find("cpu");
    return bi && bi->weights_layout ? bi->weights_layout() : "";
}

int hy__pcache_key_init(const char *path, const hy_model_params *p, hy__pcache_key *k) {
    const char *off = getenv("HOTYOLO_NO_CACHE");
    if ((p && !p->cache) || (off && off[0] && strcmp(off, "0") != 0)) return 0;
    if (p && (p->mode != HY_LOAD_STRICT || p->nc != 0 || p->n_map != 0)) return 0; /* other networks */
    memset(k, 0, sizeof *k);
    k->t_key = now_s();
    if (stat(path, &k->src) != 0 || !S_ISREG(k->src.st_mode)) return 0; /* the direct load says why */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint8_t head[64];
    ssize_t got = read(fd, head, sizeof head);
    close(fd);
    if (got <= 0) return 0;
    k->format = hy__wformat_detect(head, (size_t)got);
    if (k->format != HY_WFORMAT_PT && k->format != HY_WFORMAT_PT_LEGACY && k->format != HY_WFORMAT_ONNX) return 0;
    if (hy_pcache_dir(k->dir, sizeof k->dir) != HY_OK) return 0;
    char real[PATH_MAX];
    if (!realpath(path, real)) return 0;
    const char *layout = layout_id();
    char id[PATH_MAX + 256];
    int n = snprintf(id, sizeof id, "hotyolo-pcache-1\n%s\n%s\n%s\n%llu %llu %lld %lld.%09ld %lld.%09ld",
                     HY_VERSION_STRING, layout, real, (unsigned long long)k->src.st_dev,
                     (unsigned long long)k->src.st_ino, (long long)k->src.st_size,
                     (long long)k->src.st_mtim.tv_sec, k->src.st_mtim.tv_nsec, (long long)k->src.st_ctim.tv_sec,
                     k->src.st_ctim.tv_nsec);
    uint8_t d[HY_SHA256_LEN];
    char hex[HY_SHA256_HEX_LEN + 1];
    if (n < 0 || (size_t)n >= sizeof id || hy__sha256_buf(id, (size_t)n, d) != HY_OK) return 0;
    hy__sha256_hex(d, hex);
    n = snprintf(k->entry, sizeof k->entry, "%s/%s" SUFFIX, k->dir, hex);
    return n > 0 && (size_t)n < sizeof k->entry;
}

/* ---- load from an entry -------------------------------------------------------------- */
static void stamp(const char *entry, double mtime_s) {
    struct timespec t[2];
    t[0].tv_sec = 0;
    t[0].tv_nsec = UTIME_NOW; /* atime: used now (LRU) */
    if (mtime_s > 0) {
        t[1].tv_sec = (time_t)mtime_s;
        t[1].tv_nsec = (long)((mtime_s - (double)t[1].tv_sec) * 1e9);
    } else {
        t[1].tv_sec = 0;
        t[1].tv_nsec = UTIME_OMIT;
    }
    if (utimensat(AT_FDCWD, entry, t, 0) != 0)
        hy__log(HY_LOG_DEBUG, "packed-weights cache: %s: cannot touch: %s", entry, strerror(errno));
}

/* Drops a bad entry: logged, removed (the caller rebuilds it). */
static hy_status reject(const char *entry, const char *why) {
    hy__log(HY_LOG_WARN, "packed-weights cache: %s: %s; rebuilding it", entry, why);
    if (unlink(entry) != 0 && errno != ENOENT)
        hy__log(HY_LOG_WARN, "packed-weights cache: %s: cannot remove: %s", entry, strerror(errno));
    return HY_ERR_NOT_FOUND;
}

hy_status hy__pcache_load(const hy__pcache_key *k, const char *path, const hy_model_params *p, hy_model **out) {
    struct stat es;
    if (stat(k->entry, &es) != 0 || !S_ISREG(es.st_mode)) return HY_ERR_NOT_FOUND;
    char why[512];
    hy__wfile *f = NULL;
    /* Every use checks the header, offsets and file size (hy__st_open), the data section's
     * block checksum (XXH3, ~2 ms for yolov8n's 47 MB on 2 cores: storage corruption), the
     * layout and load.c's packed canary. The sha256 of the data (~60 ms, as long as loading
     * the .pt) instead with params->verify or HOTYOLO_CACHE_VERIFY=1. */
    const char *ev = getenv("HOTYOLO_CACHE_VERIFY");
    int verify = (p && p->verify) || (ev && strcmp(ev, "1") == 0);
    hy_status st = hy__wfile_open(k->entry, verify ? HY_ST_VERIFY_SHA256 : HY_ST_VERIFY_XXH3, &f);
    if (st) {
        snprintf(why, sizeof why, "%s", hy_last_error());
        return reject(k->entry, why);
    }
    const hy__wsource *src = hy__wfile_source(f);
    const hy__st_file *sf = hy__wfile_st(f);
    const char *sha = sf ? hy__st_meta(sf, "hotyolo.source_sha256") : NULL;
    const char *lay = src->packed_layout;
    if (!sf || !src->fused || !sha || strlen(sha) != HY_SHA256_HEX_LEN || !lay || strcmp(lay, layout_id()) != 0) {
        hy__wfile_close(f);
        return reject(k->entry, "not a fused, packed entry of this build");
    }
    /* racy stat: the source changed within RACY_S of the moment the entry's content was known
     * to match it, so an equal stat does not prove equal content: compare the content hash */
    double changed = ts(&k->src.st_ctim) > ts(&k->src.st_mtim) ? ts(&k->src.st_ctim) : ts(&k->src.st_mtim);
    double restamp = 0;
    if (changed + RACY_S >= ts(&es.st_mtim)) {
        char hex[HY_SHA256_HEX_LEN + 1];
        double t0 = now_s();
        if (hy__sha256_file(path, hex) != HY_OK) {
            hy__wfile_close(f);
            return HY_ERR_NOT_FOUND; /* load directly: it reports the source's error */
        }
        if (strcmp(hex, sha) != 0) {
            hy__wfile_close(f);
            return reject(k->entry, "built from other contents than the source has now");
        }
        restamp = t0; /* known equal at t0: later loads skip the hash once t0 is past the window */
    }
    st = hy__model_from_source(src, path, p, &f, out);
    hy__wfile_close(f); /* NULL when the model keeps it */
    if (st == HY_ERR_BACKEND || st == HY_ERR_NOMEM) return st; /* the device or memory, not the entry */
    if (st) {
        snprintf(why, sizeof why, "%s", hy_last_error());
        return reject(k->entry, why);
    }
    (*out)->format = k->format;
    stamp(k->entry, restamp);
    return HY_OK;
}

/* ---- fill and evict ------------------------------------------------------------------ */
static int mkdirs(const char *dir) {
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != 0) continue;
        char c = tmp[i];
        tmp[i] = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        tmp[i] = c;
    }
    struct stat s;
    return stat(dir, &s) == 0 && S_ISDIR(s.st_mode) ? 0 : -1;
}

static uint64_t max_bytes(void) {
    const char *s = getenv("HOTYOLO_CACHE_MAX");
    if (!s || !s[0]) return DEFAULT_MAX;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10, end++;
    else if (*end == 'M' || *end == 'm') shift = 20, end++;
    else if (*end == 'G' || *end == 'g') shift = 30, end++;
    if (errno || end == s || *end || s[0] == '-' || v > (UINT64_MAX >> shift)) {
        hy__log(HY_LOG_WARN, "HOTYOLO_CACHE_MAX=%s: not a size (bytes, or with K, M, G); using 1G", s);
        return DEFAULT_MAX;
    }
    return (uint64_t)v << shift;
}

static int is_entry_name(const char *nm) {
    size_t n = strlen(nm);
    if (n != HY_SHA256_HEX_LEN + strlen(SUFFIX) || strcmp(nm + HY_SHA256_HEX_LEN, SUFFIX) != 0) return 0;
    for (size_t i = 0; i < HY_SHA256_HEX_LEN; i++)
        if (!((nm[i] >= '0' && nm[i] <= '9') || (nm[i] >= 'a' && nm[i] <= 'f'))) return 0;
    return 1;
}

static int is_tmp_name(const char *nm) {
    const char *t = strstr(nm, SUFFIX ".tmp-");
    return t && t == nm + HY_SHA256_HEX_LEN && strlen(t) == strlen(SUFFIX ".tmp-XXXXXX");
}

typedef struct scan_item {
    char name[96];
    uint64_t size;
    double atime, mtime;
} scan_item;

static int by_atime(const void *a, const void *b) {
    double x = ((const scan_item *)a)->atime, y = ((const scan_item *)b)->atime;
    return x < y ? -1 : x > y;
}

/* Entries of dir, least recently used first; stale temporaries removed when clean_tmp. */
static hy_status scan(const char *dir, int clean_tmp, scan_item **out, size_t *n_out, size_t *n_tmp) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return HY_OK;
        return hy__error(HY_ERR_IO, "%s: cannot open the cache directory: %s", dir, strerror(errno));
    }
    scan_item *v = NULL;
    size_t n = 0, cap = 0;
    hy_status st = HY_OK;
    double now = now_s();
    struct dirent *e;
    char full[4200];
    while ((e = readdir(d)) && n < MAX_SCAN) {
        int ent = is_entry_name(e->d_name), tmp = !ent && is_tmp_name(e->d_name);
        if (!ent && !tmp) continue; /* never touch what the cache did not write */
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat s;
        if (lstat(full, &s) != 0 || !S_ISREG(s.st_mode)) continue;
        if (tmp) {
            if (clean_tmp && (clean_tmp > 1 || now - ts(&s.st_mtim) > TMP_STALE_S) && unlink(full) == 0 && n_tmp)
                (*n_tmp)++;
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            scan_item *x = hy__realloc(v, nc * sizeof *x);
            if (!x) {
                st = hy__error(HY_ERR_NOMEM, "out of memory");
                break;
            }
            v = x;
            cap = nc;
        }
        snprintf(v[n].name, sizeof v[n].name, "%s", e->d_name);
        v[n].size = (uint64_t)s.st_size;
        v[n].atime = ts(&s.st_atim);
        v[n].mtime = ts(&s.st_mtim);
        n++;
    }
    closedir(d);
    if (st) {
        hy__free(v);
        return st;
    }
    if (n) qsort(v, n, sizeof *v, by_atime);
    *out = v;
    *n_out = n;
    return HY_OK;
}

/* Removes least recently used entries until the cache holds at most max bytes; `keep` (a
 * file name) stays whatever its rank. */
static void evict(const char *dir, const char *keep, uint64_t max) {
    scan_item *v;
    size_t n;
    if (scan(dir, 1, &v, &n, NULL) != HY_OK) {
        hy__log(HY_LOG_WARN, "packed-weights cache: %s", hy_last_error());
        return;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += v[i].size;
    char full[4200];
    for (size_t i = 0; i < n && total > max; i++) {
        if (keep && strcmp(v[i].name, keep) == 0) continue;
        snprintf(full, sizeof full, "%s/%s", dir, v[i].name);
        if (unlink(full) == 0 || errno == ENOENT) { /* ENOENT: another process evicted it */
            total -= v[i].size;
            hy__log(HY_LOG_INFO, "packed-weights cache: evicted %s (%llu bytes; HOTYOLO_CACHE_MAX %llu)", full,
                    (unsigned long long)v[i].size, (unsigned long long)max);
        }
    }
    hy__free(v);
}

void hy__pcache_fill(const hy__pcache_key *k, const char *path) {
    uint64_t max = max_bytes();
    if (mkdirs(k->dir) != 0) {
        hy__log(HY_LOG_WARN, "packed-weights cache: %s: cannot create the directory: %s", k->dir, strerror(errno));
        return;
    }
    hy_convert_params cp = hy_convert_default_params();
    cp.fuse = 1;
    cp.dtype = HY_DTYPE_F32; /* packed blobs are written for float32 files only */
    double t0 = hy__now_ms();
    if (hy_convert(path, k->entry, &cp) != HY_OK) {
        hy__log(HY_LOG_WARN, "packed-weights cache: %s: not written: %s", k->entry, hy_last_error());
        return;
    }
    /* the source must still be what the key says, or the entry may hold newer content */
    struct stat s;
    if (stat(path, &s) != 0 || s.st_ino != k->src.st_ino || s.st_size != k->src.st_size ||
        ts(&s.st_mtim) != ts(&k->src.st_mtim) || ts(&s.st_ctim) != ts(&k->src.st_ctim)) {
        hy__log(HY_LOG_WARN, "packed-weights cache: %s changed while its entry was written; entry dropped", path);
        unlink(k->entry);
        return;
    }
    stamp(k->entry, k->t_key); /* content known to match from the key's time on */
    hy__log(HY_LOG_INFO, "packed-weights cache: %s -> %s (%.1f ms)", path, k->entry, hy__now_ms() - t0);
    const char *base = strrchr(k->entry, '/');
    evict(k->dir, base ? base + 1 : k->entry, max);
}

/* ---- list and clear --------------------------------------------------------------------- */
hy_status hy_pcache_list(hy_pcache_entry **out, size_t *n_out) {
    if (!out || !n_out) return hy__error(HY_ERR_INVALID_ARG, "hy_pcache_list: out and n are required");
    char dir[4096], full[4200];
    hy_status st = hy_pcache_dir(dir, sizeof dir);
    if (st) return st;
    scan_item *v;
    size_t n;
    if ((st = scan(dir, 0, &v, &n, NULL))) return st;
    hy_pcache_entry *e = n ? hy__calloc(n, sizeof *e) : NULL;
    if (n && !e) {
        hy__free(v);
        return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(e[i].file, sizeof e[i].file, "%s", v[i].name);
        e[i].size = v[i].size;
        e[i].created = (int64_t)v[i].mtime;
        e[i].last_used = (int64_t)v[i].atime;
        snprintf(full, sizeof full, "%s/%s", dir, v[i].name);
        hy__st_file *f = NULL;
        if (hy__st_open(full, 0, &f) != HY_OK) continue; /* listed as unreadable; load rebuilds it */
        const char *sha = hy__st_meta(f, "hotyolo.source_sha256"), *lay = hy__st_meta(f, "hotyolo.packed_layout");
        const char *var = hy__st_meta(f, "hotyolo.variant"), *nc = hy__st_meta(f, "hotyolo.nc");
        snprintf(e[i].source_sha256, sizeof e[i].source_sha256, "%s", sha ? sha : "");
        snprintf(e[i].layout, sizeof e[i].layout, "%s", lay ? lay : "");
        snprintf(e[i].variant, sizeof e[i].variant, "%s", var ? var : "");
        e[i].nc = nc ? atoi(nc) : 0;
        hy__st_close(f);
    }
    hy__free(v);
    *out = e;
    *n_out = n;
    return HY_OK;
}

hy_status hy_pcache_clear(size_t *n_removed) {
    char dir[4096], full[4200];
    hy_status st = hy_pcache_dir(dir, sizeof dir);
    if (st) return st;
    scan_item *v;
    size_t n, removed = 0;
    if ((st = scan(dir, 2, &v, &n, NULL))) return st;
    for (size_t i = 0; i < n; i++) {
        snprintf(full, sizeof full, "%s/%s", dir, v[i].name);
        if (unlink(full) == 0) removed++;
        else if (errno != ENOENT && !st)
            st = hy__error(HY_ERR_IO, "%s: cannot remove: %s", full, strerror(errno));
    }
    hy__free(v);
    if (n_removed) *n_removed = removed;
    return st;
}
