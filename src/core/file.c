#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static hy_status open_regular(const char *path, int *fd_out, size_t *size_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hy__error(errno == ENOENT ? HY_ERR_NOT_FOUND : HY_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hy__error(HY_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hy__error(HY_ERR_IO, "%s: not a regular file", path);
    }
    *fd_out = fd;
    *size_out = (size_t)st.st_size;
    return HY_OK;
}

hy_status hy__file_read(const char *path, uint8_t **data, size_t *size) {
    int fd = -1;
    size_t n = 0;
    hy_status st = open_regular(path, &fd, &n);
    if (st) return st;
    uint8_t *buf = hy__malloc(n + 1);
    if (!buf) {
        close(fd);
        return hy__error(HY_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            hy__free(buf);
            close(fd);
            return hy__error(HY_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    *size = n;
    return HY_OK;
}

hy_status hy__map_open(const char *path, hy__map *out) {
    int fd = -1;
    size_t n = 0;
    hy_status st = open_regular(path, &fd, &n);
    if (st) return st;
    const uint8_t *p = NULL;
    if (n > 0) {
        void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return hy__error(HY_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        p = m;
    }
    close(fd);
    out->data = p;
    out->size = n;
    return HY_OK;
}

void hy__map_close(hy__map *m) {
    if (m && m->data) munmap((void *)m->data, m->size);
    if (m) {
        m->data = NULL;
        m->size = 0;
    }
}

double hy__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void *hy__pages_alloc(size_t n) {
    if (n == 0) n = 1;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    hy__alloc_count_add(1);
    return p;
}

void hy__pages_free(void *p, size_t n) {
    if (!p) return;
    munmap(p, n ? n : 1);
    hy__alloc_count_add(-1);
}
