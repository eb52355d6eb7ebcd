/* Read-only ZIP reader over a memory buffer (what torch.save writes, and a bit more).
 *
 * Supports: end-of-central-directory search (bounded to the last 64 KiB + 22 bytes), ZIP64
 * EOCD locator/record and ZIP64 extra fields, stored (method 0) and deflated (method 8)
 * entries, CRC-32 verification. Every offset and size is checked against the buffer size
 * with overflow-checked arithmetic; a damaged archive gives HY_ERR_FORMAT naming `what`.
 * Ambiguous archives are refused: duplicate names (also names equal after dropping "./"
 * components and repeated/trailing slashes, or ignoring ASCII case: PyTorch reads the last
 * duplicate, this reader the first) and local-header names that differ from the central
 * directory's.
 * Not supported: encryption, multi-disk archives (HY_ERR_UNSUPPORTED).
 *
 *   hy__zip *z;
 *   if (hy__zip_open(buf, len, "model.pt", &z)) return ...;
 *   const hy__zip_entry *e = hy__zip_find(z, "archive/data.pkl");
 *   hy__zip_data d;
 *   if (e && hy__zip_read(z, e, SIZE_MAX, &d) == HY_OK) { use(d.data, d.size); hy__zip_data_free(&d); }
 *   hy__zip_close(z);
 */
#ifndef HY_IO_ZIP_H
#define HY_IO_ZIP_H

#include "core/core.h"

typedef struct hy__zip_entry {
    const char *name;      /* NUL-terminated copy of the central-directory name */
    uint64_t comp_size;    /* bytes stored in the archive */
    uint64_t size;         /* uncompressed bytes */
    uint64_t local_offset; /* local header offset */
    uint64_t data_offset;  /* first byte of the (compressed) data, checked in bounds */
    uint32_t crc32;
    uint16_t method; /* 0 stored, 8 deflated, others refused by hy__zip_read */
    uint16_t flags;
} hy__zip_entry;

typedef struct hy__zip hy__zip;

/* Parses the central directory of buf[0, len). buf is borrowed and must outlive the
 * returned reader (entries' data point into it). Errors: HY_ERR_FORMAT (not a zip,
 * truncated, an offset/size outside the buffer, duplicate or mismatched names),
 * HY_ERR_UNSUPPORTED (multi-disk),
 * HY_ERR_NOMEM. `what` names the buffer in error messages (copied). */
hy_status hy__zip_open(const uint8_t *buf, size_t len, const char *what, hy__zip **out);
/* Frees the reader; NULL is a no-op. */
void hy__zip_close(hy__zip *z);

size_t hy__zip_count(const hy__zip *z);
/* i-th entry in central-directory order; NULL when i is out of range. */
const hy__zip_entry *hy__zip_entry_at(const hy__zip *z, size_t i);
/* Exact-name lookup (O(log n)); NULL when absent (names are unique: see hy__zip_open). */
const hy__zip_entry *hy__zip_find(const hy__zip *z, const char *name);

/* Uncompressed bytes of an entry. `data` points into the archive buffer for stored entries
 * (owned == NULL) or into `owned` (heap) for deflated ones; release with hy__zip_data_free. */
typedef struct hy__zip_data {
    const uint8_t *data;
    size_t size;
    uint8_t *owned;
} hy__zip_data;

/* Reads (inflating if needed) and CRC-checks an entry. A deflated entry declaring more than
 * max_inflated bytes is refused before anything is allocated (stored entries are views of the
 * mapping and cost nothing). Errors name the archive and entry: HY_ERR_FORMAT (bad deflate
 * stream, size or CRC mismatch, over max_inflated), HY_ERR_UNSUPPORTED (encrypted, or a method
 * other than stored/deflated), HY_ERR_NOMEM. */
hy_status hy__zip_read(const hy__zip *z, const hy__zip_entry *e, size_t max_inflated,
                       hy__zip_data *out);
void hy__zip_data_free(hy__zip_data *d);

/* Uncompressed bytes [begin, end) of an entry into dst (end - begin bytes), without
 * inflating more than `end` bytes or holding more than a 64 KiB window beyond dst: a small
 * tensor in a huge deflated storage costs only its prefix. The CRC-32 is verified only when
 * the range reaches the end of a deflated entry (the rest is never produced); stored
 * entries are not CRC-checked here (hy__zip_read does). Errors as hy__zip_read, and
 * HY_ERR_FORMAT when end exceeds the declared size or the stream ends early. */
hy_status hy__zip_read_range(const hy__zip *z, const hy__zip_entry *e, uint64_t begin,
                             uint64_t end, uint8_t *dst);

#endif
