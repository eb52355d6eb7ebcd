/* Shared helpers of the libFuzzer targets (fuzz/fuzz_*.c; docs/fuzzing.md).
 *
 * Path-based readers get the input through an anonymous memory file: the bytes are written to
 * a memfd once per process (rewritten for each input) and the reader opens
 * "/proc/self/fd/<n>", so the code under test is exactly what a file on disk goes through. */
#ifndef HY_FUZZ_UTIL_H
#define HY_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data to this process's memory file and returns its path (static storage). */
static inline const char *fuzz_memfd_path(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("hy-fuzz", MFD_CLOEXEC);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
        if (n <= 0) abort();
        off += (size_t)n;
    }
    return path;
}

#endif
