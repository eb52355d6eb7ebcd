/* Registry blob store: content-addressed files under DIR/blobs/sha256/ab/<hex>, written through
 * locked temporary files in DIR/tmp (registry_impl.h has the layout and the locking rules). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sha256.h"
#include "registry/registry_impl.h"

int hy__registry_is_hex64(const char *s) {
    size_t i = 0;
    for (; s[i] && i < 65; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return i == 64;
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = hy__malloc(na + nb + 2);
    if (!s) return NULL;
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

char *hy__registry_blob_path(const hy_registry *r, const char *digest_hex) {
    size_t n = strlen(r->dir) + 16 + 3 + 65;
    char *s = hy__malloc(n);
    if (s) snprintf(s, n, "%s/blobs/sha256/%.2s/%s", r->dir, digest_hex, digest_hex);
    return s;
}

/* mkdir that accepts an existing directory. */
static hy_status mkdir_one(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return HY_OK;
    return hy__error(HY_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
}

static hy_status fsync_path(const char *path, int dir) {
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hy__error(HY_ERR_IO, "%s: cannot open to sync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc) return hy__error(HY_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
    return HY_OK;
}

// --- temp files ---

hy_status hy__registry_tmp_open(hy_registry *r, const char *kind, int *fd_out, char **path_out) {
    static atomic_uint counter;
    char *tdir = join(r->dir, "tmp");
    if (!tdir) return hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    hy_status st = mkdir_one(tdir);
    char *path = NULL;
    int fd = -1;
    for (int tries = 0; !st && tries < 100; tries++) {
        char name[96];
        snprintf(name, sizeof name, "%.16s-%ld-%u.tmp", kind, (long)getpid(), atomic_fetch_add(&counter, 1));
        hy__free(path);
        path = join(tdir, name);
        if (!path) {
            st = hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
            break;
        }
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST) break;
    }
    if (!st && fd < 0) st = hy__error(HY_ERR_IO, "%s: cannot create: %s", path ? path : tdir, strerror(errno));
    if (!st && flock(fd, LOCK_EX | LOCK_NB) != 0) st = hy__error(HY_ERR_IO, "%s: cannot lock: %s", path, strerror(errno));
    hy__free(tdir);
    if (st) {
        if (fd >= 0) {
            unlink(path);
            close(fd);
        }
        hy__free(path);
        return st;
    }
    *fd_out = fd;
    *path_out = path;
    return HY_OK;
}

// --- blobs ---

hy_status hy__registry_blob_commit(hy_registry *r, const char *tmp_path, const char *digest_hex) {
    if (!hy__registry_is_hex64(digest_hex)) return hy__error(HY_ERR_INVALID_ARG, "registry %s: bad digest", r->dir);
    char *blob = hy__registry_blob_path(r, digest_hex);
    if (!blob) return hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    hy_status st = HY_OK;
    /* DIR/blobs/sha256/ab: create each level (and make the new entries durable) */
    char *slash = strrchr(blob, '/');
    *slash = 0;
    char *sub = strrchr(blob, '/');
    *sub = 0;
    char *sha = strrchr(blob, '/');
    *sha = 0; /* blob = DIR/blobs */
    if ((st = mkdir_one(blob))) goto done;
    *sha = '/';
    if ((st = mkdir_one(blob))) goto done;
    *sub = '/';
    if ((st = mkdir_one(blob))) goto done;
    *slash = '/';
    /* an existing blob with this digest is replaced by the (checked) copy: same content when
     * it is sound, repaired when it was damaged; readers holding it open keep the old inode */
    if ((st = fsync_path(tmp_path, 0))) goto done;
    if (chmod(tmp_path, 0444) != 0) {
        st = hy__error(HY_ERR_IO, "%s: chmod: %s", tmp_path, strerror(errno));
        goto done;
    }
    if (rename(tmp_path, blob) != 0) {
        st = hy__error(HY_ERR_IO, "%s -> %s: rename failed: %s", tmp_path, blob, strerror(errno));
        goto done;
    }
    *slash = 0;
    st = fsync_path(blob, 1); /* the directory entry */
    *slash = '/';
done:
    if (st) unlink(tmp_path);
    hy__free(blob);
    return st;
}

hy_status hy__registry_copy_hash(const char *path, int out, const char *out_name, char hex[65], uint64_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hy__error(errno == ENOENT ? HY_ERR_NOT_FOUND : HY_ERR_IO, "%s: %s", path, strerror(errno));
    enum { BUF = 1 << 20 };
    uint8_t *buf = hy__malloc(BUF);
    hy__sha256_ctx h = {0};
    hy_status st = buf ? hy__sha256_init(&h) : hy__error(HY_ERR_NOMEM, "%s: out of memory", path);
    uint64_t total = 0;
    while (!st) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) st = hy__error(HY_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (n <= 0) break;
        hy__sha256_update(&h, buf, (size_t)n);
        for (ssize_t off = 0; out >= 0 && off < n && !st;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) st = hy__error(HY_ERR_IO, "%s: write failed: %s", out_name, strerror(errno));
            else off += w;
        }
        total += (uint64_t)n;
    }
    uint8_t d[HY_SHA256_LEN];
    if (!st) st = hy__sha256_final(&h, d);
    else hy__sha256_abort(&h);
    if (!st) {
        hy__sha256_hex(d, hex);
        *size = total;
    }
    hy__free(buf);
    close(fd);
    return st;
}

hy_status hy__registry_hash_file(const char *path, char hex[65], uint64_t *size) {
    return hy__registry_copy_hash(path, -1, NULL, hex, size);
}

// --- the registry lock ---

hy_status hy__registry_lock(hy_registry *r, int excl) {
    while (flock(r->lock_fd, excl ? LOCK_EX : LOCK_SH) != 0) {
        if (errno == EINTR) continue;
        return hy__error(HY_ERR_IO, "registry %s: cannot lock registry.lock: %s", r->dir, strerror(errno));
    }
    return HY_OK;
}

void hy__registry_unlock(hy_registry *r) { flock(r->lock_fd, LOCK_UN); }
