/* ZIP reader over a memory buffer: central directory, ZIP64, stored + deflated, CRC-32. */
#include "io/zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOC 0x07064b50u

#define EOCD_SIZE 22
#define EOCD64_LOC_SIZE 20
#define EOCD64_SIZE 56
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30
#define MAX_COMMENT 65535

/* Deflate cannot expand data by more than ~1032:1; a larger declared size is a lie. */
#define MAX_DEFLATE_RATIO 1032u

struct hy__zip {
    const uint8_t *buf; /* borrowed */
    size_t len;
    hy__zip_entry *entries; /* (n) central-directory order */
    size_t n;
    size_t *sorted; /* (n) entry indices sorted by name, ties by index */
    char *names;    /* all names, NUL-terminated, back to back */
    char what[256];
};

// --- little-endian readers (callers check bounds first) ---------------------------------

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* True when [off, off + n) lies inside a buffer of len bytes (no overflow). */
static bool in_bounds(uint64_t off, uint64_t n, size_t len) {
    size_t end;
    if (off > SIZE_MAX || n > SIZE_MAX) return false;
    return hy__add_ok((size_t)off, (size_t)n, &end) && end <= len;
}

// --- end of central directory -----------------------------------------------------------

typedef struct cd_info {
    uint64_t count, size, offset;
} cd_info;

static hy_status find_cd(const uint8_t *buf, size_t len, const char *what, cd_info *out) {
    if (len < EOCD_SIZE)
        return hy__error(HY_ERR_FORMAT, "%s: not a zip archive (%zu bytes, too short)", what, len);
    /* The EOCD is the LAST signature with 22 bytes after it: PyTorch's miniz takes that one
     * whatever its comment length says, Python's zipfile the last one too (the comment is at
     * most 64 KiB). It must end the file exactly (its comment reaching the last byte), so a
     * reader that instead takes the last record whose comment fits finds the same one. An
     * earlier signature (in tensor data, or a decoy) is then never read by anyone. */
    size_t lo = len - EOCD_SIZE > MAX_COMMENT ? len - EOCD_SIZE - MAX_COMMENT : 0;
    size_t eocd = SIZE_MAX;
    for (size_t i = len - EOCD_SIZE + 1; i-- > lo;)
        if (rd32(buf + i) == SIG_EOCD) {
            eocd = i;
            break;
        }
    if (eocd == SIZE_MAX)
        return hy__error(HY_ERR_FORMAT,
                         "%s: not a zip archive or truncated (no end-of-central-directory record)",
                         what);
    if (eocd + EOCD_SIZE + rd16(buf + eocd + 20) != len)
        return hy__error(HY_ERR_FORMAT,
                         "%s: zip end-of-central-directory record (comment of %u bytes) does not "
                         "end the file: readers disagree on the archive",
                         what, rd16(buf + eocd + 20));
    const uint8_t *e = buf + eocd;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    uint64_t n_disk = rd16(e + 8), count = rd16(e + 10);
    uint64_t size = rd32(e + 12), offset = rd32(e + 16);

    /* ZIP64: a locator sits right before the EOCD and points at the ZIP64 EOCD record. */
    if (eocd >= EOCD64_LOC_SIZE && rd32(buf + eocd - EOCD64_LOC_SIZE) == SIG_EOCD64_LOC) {
        const uint8_t *l = buf + eocd - EOCD64_LOC_SIZE;
        uint64_t rec = rd64(l + 8);
        if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
            return hy__error(HY_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported",
                             what);
        if (!in_bounds(rec, EOCD64_SIZE, eocd - EOCD64_LOC_SIZE) || rd32(buf + rec) != SIG_EOCD64)
            return hy__error(
                HY_ERR_FORMAT,
                "%s: ZIP64 end-of-central-directory record missing or outside the file", what);
        const uint8_t *r = buf + rec;
        disk = (uint16_t)(rd32(r + 16) != 0);
        cd_disk = (uint16_t)(rd32(r + 20) != 0);
        n_disk = rd64(r + 24);
        count = rd64(r + 32);
        size = rd64(r + 40);
        offset = rd64(r + 48);
    }
    if (disk != 0 || cd_disk != 0 || n_disk != count)
        return hy__error(HY_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", what);
    if (!in_bounds(offset, size, eocd))
        return hy__error(
            HY_ERR_FORMAT,
            "%s: central directory (offset %llu, %llu bytes) lies outside the file (%zu bytes)",
            what, (unsigned long long)offset, (unsigned long long)size, len);
    if (count > size / CENTRAL_SIZE)
        return hy__error(HY_ERR_FORMAT, "%s: central directory claims %llu entries in %llu bytes",
                         what, (unsigned long long)count, (unsigned long long)size);
    out->count = count;
    out->size = size;
    out->offset = offset;
    return HY_OK;
}

// --- central directory entries ----------------------------------------------------------

/* Applies the ZIP64 extended-information extra field (id 0x0001) to the fields that hold
 * their 0xFFFFFFFF sentinel, in the order the spec lists them. */
static hy_status apply_zip64_extra(const uint8_t *x, size_t xlen, hy__zip_entry *e,
                                   uint32_t csize32, uint32_t size32, uint32_t off32,
                                   const char *what, size_t idx) {
    bool need_size = size32 == 0xFFFFFFFFu, need_csize = csize32 == 0xFFFFFFFFu,
         need_off = off32 == 0xFFFFFFFFu;
    size_t pos = 0;
    while (pos + 4 <= xlen) {
        uint16_t id = rd16(x + pos), n = rd16(x + pos + 2);
        if (n > xlen - pos - 4) break; /* malformed trailing field: ignore like zip tools do */
        const uint8_t *d = x + pos + 4;
        if (id == 0x0001) {
            size_t k = 0;
            if (need_size) {
                if (k + 8 > n) goto short_field;
                e->size = rd64(d + k);
                k += 8;
                need_size = false;
            }
            if (need_csize) {
                if (k + 8 > n) goto short_field;
                e->comp_size = rd64(d + k);
                k += 8;
                need_csize = false;
            }
            if (need_off) {
                if (k + 8 > n) goto short_field;
                e->local_offset = rd64(d + k);
                need_off = false;
            }
            break;
        }
        pos += 4 + (size_t)n;
    }
    if (need_size || need_csize || need_off)
        return hy__error(HY_ERR_FORMAT,
                         "%s: zip entry %zu ('%s') lacks the ZIP64 extra field its sizes require",
                         what, idx, e->name);
    return HY_OK;
short_field:
    return hy__error(HY_ERR_FORMAT, "%s: zip entry %zu ('%s') has a truncated ZIP64 extra field",
                     what, idx, e->name);
}

/* Merge sort by name (stable, no global state): qsort_r is not C11. */
static void sort_names(const hy__zip_entry *ents, size_t *idx, size_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_names(ents, idx, tmp, h);
    sort_names(ents, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = strcmp(ents[idx[j]].name, ents[idx[i]].name) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* The name as a reader could resolve it: "./" components and repeated or trailing slashes
 * dropped, ASCII lowercased (case-insensitive file systems and extractors). Writes at most
 * strlen(src) + 1 bytes. */
static void normalize_name(const char *src, char *dst) {
    size_t k = 0;
    for (const char *p = src; *p;) {
        if (*p == '/') { /* repeated slash */
            p++;
            continue;
        }
        if (p[0] == '.' && (p[1] == '/' || p[1] == 0)) { /* "./" component */
            p += p[1] ? 2 : 1;
            continue;
        }
        while (*p && *p != '/') {
            char c = *p++;
            dst[k++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        if (*p == '/') dst[k++] = '/';
    }
    while (k && dst[k - 1] == '/') k--;
    dst[k] = 0;
}

/* Entry name for messages: printable ASCII kept, other bytes as \xNN, long names cut. */
static const char *printable(const char *s, char *buf, size_t cap) {
    size_t k = 0;
    for (; *s && k + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f && c != '\'')
            buf[k++] = (char)c;
        else
            k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
    }
    buf[k] = 0;
    return buf;
}

/* Two entries a reader could take for one another (PyTorch reads the LAST of duplicate
 * names, this reader would read the first): refuse the archive. */
static hy_status check_duplicates(const hy__zip *z, const char *what, size_t n, size_t names_cap,
                                  size_t *tmp) {
    hy_status st = HY_OK;
    char *norm = hy__malloc(names_cap);
    hy__zip_entry *ne = hy__calloc(n ? n : 1, sizeof *ne);
    size_t *idx = hy__calloc(n ? n : 1, sizeof *idx);
    if (!norm || !ne || !idx) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", what);
        goto done;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        ne[i].name = norm + pos;
        normalize_name(z->entries[i].name, norm + pos);
        pos += strlen(norm + pos) + 1;
        idx[i] = i;
    }
    sort_names(ne, idx, tmp, n);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(ne[idx[i - 1]].name, ne[idx[i]].name)) continue;
        size_t a = HY_MIN(idx[i - 1], idx[i]), b = HY_MAX(idx[i - 1], idx[i]);
        char pa[160], pb[160];
        st = hy__error(HY_ERR_FORMAT,
                       "%s: zip archive has duplicate entries '%s' (entry %zu) and '%s' (entry %zu): "
                       "readers disagree on which one holds the data",
                       what, printable(z->entries[a].name, pa, sizeof pa), a,
                       printable(z->entries[b].name, pb, sizeof pb), b);
        break;
    }
done:
    hy__free(norm);
    hy__free(ne);
    hy__free(idx);
    return st;
}

hy_status hy__zip_open(const uint8_t *buf, size_t len, const char *what, hy__zip **out) {
    if (!what) what = "zip";
    if (!buf && len) return hy__error(HY_ERR_INVALID_ARG, "%s: NULL buffer", what);
    cd_info cd = {0, 0, 0};
    hy_status st = find_cd(buf, len, what, &cd);
    if (st) return st;

    hy__zip *z = hy__calloc(1, sizeof *z);
    size_t *tmp = NULL;
    if (!z) return hy__error(HY_ERR_NOMEM, "%s: out of memory", what);
    z->buf = buf;
    z->len = len;
    snprintf(z->what, sizeof z->what, "%s", what);
    size_t n = (size_t)cd.count;
    /* Names total at most the central directory size (bounded by the file). */
    z->entries = hy__calloc(n ? n : 1, sizeof *z->entries);
    z->sorted = hy__calloc(n ? n : 1, sizeof *z->sorted);
    tmp = hy__calloc(n ? n : 1, sizeof *tmp);
    z->names = hy__malloc((size_t)cd.size + n + 1);
    if (!z->entries || !z->sorted || !tmp || !z->names) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory for %zu zip entries", what, n);
        goto fail;
    }
    size_t pos = (size_t)cd.offset, end = (size_t)(cd.offset + cd.size), name_pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (end - pos < CENTRAL_SIZE || rd32(buf + pos) != SIG_CENTRAL) {
            st = hy__error(HY_ERR_FORMAT,
                           "%s: zip central directory entry %zu is damaged or truncated", what, i);
            goto fail;
        }
        const uint8_t *c = buf + pos;
        size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        size_t rec = CENTRAL_SIZE + nlen + xlen + clen;
        if (rec > end - pos) {
            st = hy__error(HY_ERR_FORMAT,
                           "%s: zip central directory entry %zu runs past the directory", what, i);
            goto fail;
        }
        hy__zip_entry *e = &z->entries[i];
        e->name = z->names + name_pos;
        memcpy(z->names + name_pos, c + CENTRAL_SIZE, nlen);
        z->names[name_pos + nlen] = 0;
        name_pos += nlen + 1;
        e->flags = rd16(c + 8);
        e->method = rd16(c + 10);
        e->crc32 = rd32(c + 16);
        uint32_t csize32 = rd32(c + 20), size32 = rd32(c + 24), off32 = rd32(c + 42);
        e->comp_size = csize32;
        e->size = size32;
        e->local_offset = off32;
        if (csize32 == 0xFFFFFFFFu || size32 == 0xFFFFFFFFu || off32 == 0xFFFFFFFFu) {
            st = apply_zip64_extra(c + CENTRAL_SIZE + nlen, xlen, e, csize32, size32, off32, what,
                                   i);
            if (st) goto fail;
        }
        /* Local header: only its name/extra lengths matter (sizes come from the directory,
         * which is authoritative even when a data descriptor follows the data). */
        if (!in_bounds(e->local_offset, LOCAL_SIZE, len) ||
            rd32(buf + e->local_offset) != SIG_LOCAL) {
            st = hy__error(HY_ERR_FORMAT, "%s: zip entry '%s': local header missing at offset %llu",
                           what, e->name, (unsigned long long)e->local_offset);
            goto fail;
        }
        const uint8_t *l = buf + e->local_offset;
        size_t lname = rd16(l + 26);
        /* The local name must be the directory's: a streaming reader (or PyTorch) using
         * one and this reader the other would see different archives. */
        if (!in_bounds(e->local_offset + LOCAL_SIZE, lname, len) || lname != nlen ||
            memcmp(l + LOCAL_SIZE, c + CENTRAL_SIZE, nlen) != 0) {
            char pn[160];
            st = hy__error(HY_ERR_FORMAT,
                           "%s: zip entry '%s': local header name differs from the central "
                           "directory's",
                           what, printable(e->name, pn, sizeof pn));
            goto fail;
        }
        if (memchr(e->name, 0, nlen)) {
            st = hy__error(HY_ERR_FORMAT, "%s: zip entry %zu has a NUL byte in its name", what, i);
            goto fail;
        }
        e->data_offset = e->local_offset + LOCAL_SIZE + rd16(l + 26) + rd16(l + 28);
        if (!in_bounds(e->data_offset, e->comp_size, len)) {
            st = hy__error(
                HY_ERR_FORMAT,
                "%s: zip entry '%s' (%llu bytes at offset %llu) runs past the end of the file (%zu bytes)",
                what, e->name, (unsigned long long)e->comp_size, (unsigned long long)e->data_offset,
                len);
            goto fail;
        }
        z->sorted[i] = i;
        pos += rec;
    }
    z->n = n;
    if ((st = check_duplicates(z, what, n, (size_t)cd.size + n + 1, tmp))) goto fail;
    sort_names(z->entries, z->sorted, tmp, n);
    hy__free(tmp);
    *out = z;
    return HY_OK;
fail:
    hy__free(tmp);
    hy__zip_close(z);
    return st;
}

void hy__zip_close(hy__zip *z) {
    if (!z) return;
    hy__free(z->entries);
    hy__free(z->sorted);
    hy__free(z->names);
    hy__free(z);
}

size_t hy__zip_count(const hy__zip *z) { return z ? z->n : 0; }

const hy__zip_entry *hy__zip_entry_at(const hy__zip *z, size_t i) {
    return z && i < z->n ? &z->entries[i] : NULL;
}

const hy__zip_entry *hy__zip_find(const hy__zip *z, const char *name) {
    if (!z || !name) return NULL;
    size_t lo = 0, hi = z->n; /* first index whose name >= `name` */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(z->entries[z->sorted[mid]].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < z->n && strcmp(z->entries[z->sorted[lo]].name, name) == 0)
        return &z->entries[z->sorted[lo]];
    return NULL;
}

// --- entry data ---------------------------------------------------------------------------

static uint32_t crc_of(const uint8_t *p, size_t n) { return (uint32_t)crc32_z(0, p, n); }

static hy_status inflate_entry(const hy__zip *z, const hy__zip_entry *e, uint8_t *dst) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK)
        return hy__error(HY_ERR_NOMEM, "%s: zip entry '%s': cannot initialise inflate", z->what,
                         e->name);
    const uint8_t *src = z->buf + e->data_offset;
    size_t in_left = (size_t)e->comp_size, out_left = (size_t)e->size;
    s.next_out = dst;
    int rc = Z_OK;
    /* zlib counts in uInt: feed and drain in <= 1 GiB chunks. */
    while (rc == Z_OK) {
        if (s.avail_in == 0 && in_left) {
            s.next_in = (Bytef *)(uintptr_t)src;
            s.avail_in = (uInt)HY_MIN(in_left, (size_t)1 << 30);
            src += s.avail_in;
            in_left -= s.avail_in;
        }
        if (s.avail_out == 0 && out_left) {
            s.avail_out = (uInt)HY_MIN(out_left, (size_t)1 << 30);
            out_left -= s.avail_out;
        }
        uInt before_in = s.avail_in, before_out = s.avail_out;
        rc = inflate(&s, Z_NO_FLUSH);
        if (rc == Z_BUF_ERROR && (s.avail_in != before_in || s.avail_out != before_out)) rc = Z_OK;
        if (rc == Z_OK && s.avail_in == before_in && s.avail_out == before_out) rc = Z_BUF_ERROR;
    }
    uint64_t produced = s.total_out;
    inflateEnd(&s);
    if (rc != Z_STREAM_END)
        return hy__error(
            HY_ERR_FORMAT, "%s: zip entry '%s': corrupt deflate data (%s)", z->what, e->name,
            rc == Z_BUF_ERROR ? "stream truncated or longer than declared" : "invalid stream");
    if (produced != e->size)
        return hy__error(HY_ERR_FORMAT,
                         "%s: zip entry '%s': inflated to %llu bytes, directory says %llu", z->what,
                         e->name, (unsigned long long)produced, (unsigned long long)e->size);
    return HY_OK;
}

hy_status hy__zip_read(const hy__zip *z, const hy__zip_entry *e, size_t max_inflated,
                       hy__zip_data *out) {
    if (!z || !e || !out) return hy__error(HY_ERR_INVALID_ARG, "hy__zip_read: NULL argument");
    if (e->flags & 1u)
        return hy__error(HY_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", z->what, e->name);
    const uint8_t *data = NULL;
    uint8_t *owned = NULL;
    if (e->method == 0) {
        if (e->comp_size != e->size)
            return hy__error(
                HY_ERR_FORMAT, "%s: stored zip entry '%s' has compressed size %llu != size %llu",
                z->what, e->name, (unsigned long long)e->comp_size, (unsigned long long)e->size);
        data = z->buf + e->data_offset;
    } else if (e->method == 8) {
        uint64_t max =
            (e->comp_size + 1) * MAX_DEFLATE_RATIO; /* comp_size <= file size: no overflow */
        if (e->size > max || e->size > SIZE_MAX - 1)
            return hy__error(
                HY_ERR_FORMAT, "%s: zip entry '%s' claims %llu bytes from %llu compressed", z->what,
                e->name, (unsigned long long)e->size, (unsigned long long)e->comp_size);
        if (e->size > max_inflated) /* bounded before allocating: the caller knows its need */
            return hy__error(HY_ERR_FORMAT,
                             "%s: zip entry '%s' inflates to %llu bytes, over the %zu-byte limit "
                             "for it",
                             z->what, e->name, (unsigned long long)e->size, max_inflated);
        owned = hy__malloc((size_t)e->size);
        if (!owned)
            return hy__error(HY_ERR_NOMEM, "%s: zip entry '%s': cannot allocate %llu bytes",
                             z->what, e->name, (unsigned long long)e->size);
        hy_status st = inflate_entry(z, e, owned);
        if (st) {
            hy__free(owned);
            return st;
        }
        data = owned;
    } else {
        return hy__error(
            HY_ERR_UNSUPPORTED,
            "%s: zip entry '%s' uses compression method %u (only stored and deflate are supported)",
            z->what, e->name, e->method);
    }
    uint32_t crc = crc_of(data, (size_t)e->size);
    if (crc != e->crc32) {
        hy__free(owned);
        return hy__error(HY_ERR_FORMAT,
                         "%s: zip entry '%s': CRC-32 mismatch (stored %08x, computed %08x)",
                         z->what, e->name, e->crc32, crc);
    }
    out->data = data;
    out->size = (size_t)e->size;
    out->owned = owned;
    return HY_OK;
}

hy_status hy__zip_read_range(const hy__zip *z, const hy__zip_entry *e, uint64_t begin,
                             uint64_t end, uint8_t *dst) {
    if (!z || !e || (!dst && end > begin) || begin > end)
        return hy__error(HY_ERR_INVALID_ARG, "hy__zip_read_range: bad argument");
    if (e->flags & 1u)
        return hy__error(HY_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", z->what, e->name);
    if (end > e->size)
        return hy__error(HY_ERR_FORMAT, "%s: zip entry '%s': bytes [%llu, %llu) requested of %llu",
                         z->what, e->name, (unsigned long long)begin, (unsigned long long)end,
                         (unsigned long long)e->size);
    if (e->method == 0) {
        if (e->comp_size != e->size)
            return hy__error(HY_ERR_FORMAT,
                             "%s: stored zip entry '%s' has compressed size %llu != size %llu",
                             z->what, e->name, (unsigned long long)e->comp_size,
                             (unsigned long long)e->size);
        if (end > begin) memcpy(dst, z->buf + e->data_offset + begin, (size_t)(end - begin));
        return HY_OK;
    }
    if (e->method != 8)
        return hy__error(HY_ERR_UNSUPPORTED, "%s: zip entry '%s' uses compression method %u", z->what,
                         e->name, e->method);
    if (end == begin) return HY_OK;
    /* Inflate in chunks; bytes before `begin` go to a scratch window and are dropped; stop
     * once `end` is produced. The CRC is checked when the whole entry was produced. */
    enum { SCRATCH = 64 * 1024 };
    uint8_t *scratch = begin ? hy__malloc(SCRATCH) : NULL;
    if (begin && !scratch) return hy__error(HY_ERR_NOMEM, "%s: out of memory", z->what);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) {
        hy__free(scratch);
        return hy__error(HY_ERR_NOMEM, "%s: zip entry '%s': cannot initialise inflate", z->what,
                         e->name);
    }
    const uint8_t *src = z->buf + e->data_offset;
    uint64_t in_left = e->comp_size, pos = 0; /* pos: uncompressed bytes produced */
    uint32_t crc = 0;
    int rc = Z_OK;
    while (pos < end && rc == Z_OK) {
        if (s.avail_in == 0 && in_left) {
            s.next_in = (Bytef *)(uintptr_t)src;
            s.avail_in = (uInt)HY_MIN(in_left, (uint64_t)1 << 30);
            src += s.avail_in;
            in_left -= s.avail_in;
        }
        uint8_t *out = pos < begin ? scratch : dst + (pos - begin);
        uint64_t want = pos < begin ? HY_MIN((uint64_t)SCRATCH, begin - pos) : end - pos;
        s.next_out = out;
        s.avail_out = (uInt)HY_MIN(want, (uint64_t)1 << 30);
        uInt before_in = s.avail_in, before_out = s.avail_out;
        rc = inflate(&s, Z_NO_FLUSH);
        size_t got = before_out - s.avail_out;
        crc = (uint32_t)crc32_z(crc, out, got);
        pos += got;
        if (rc == Z_BUF_ERROR && (s.avail_in != before_in || got)) rc = Z_OK;
        if (rc == Z_OK && s.avail_in == before_in && !got) rc = Z_BUF_ERROR;
    }
    if (pos == e->size && rc == Z_OK) { /* the whole entry: read the final block too */
        uint8_t extra;
        uInt before_in = s.avail_in;
        do {
            if (s.avail_in == 0 && in_left) {
                s.next_in = (Bytef *)(uintptr_t)src;
                s.avail_in = (uInt)HY_MIN(in_left, (uint64_t)1 << 30);
                src += s.avail_in;
                in_left -= s.avail_in;
            }
            before_in = s.avail_in;
            s.next_out = &extra;
            s.avail_out = 1;
            rc = inflate(&s, Z_NO_FLUSH);
            if (s.avail_out == 0) rc = Z_DATA_ERROR; /* longer than declared */
        } while (rc == Z_OK && s.avail_in != before_in);
        if (rc != Z_STREAM_END) {
            inflateEnd(&s);
            hy__free(scratch);
            return hy__error(HY_ERR_FORMAT,
                             "%s: zip entry '%s': corrupt deflate data (stream truncated or "
                             "longer than declared)",
                             z->what, e->name);
        }
    }
    inflateEnd(&s);
    hy__free(scratch);
    if (rc == Z_STREAM_END && pos < e->size) /* PyTorch's reader fails on a short stream */
        return hy__error(HY_ERR_FORMAT,
                         "%s: zip entry '%s': corrupt deflate data (stream ends after %llu of "
                         "%llu bytes)",
                         z->what, e->name, (unsigned long long)pos, (unsigned long long)e->size);
    if (pos < end)
        return hy__error(HY_ERR_FORMAT,
                         "%s: zip entry '%s': corrupt deflate data (%s after %llu bytes)", z->what,
                         e->name,
                         rc == Z_BUF_ERROR || rc == Z_STREAM_END ? "stream ends early"
                                                                 : "invalid stream",
                         (unsigned long long)pos);
    if (pos == e->size && rc == Z_STREAM_END && crc != e->crc32)
        return hy__error(HY_ERR_FORMAT,
                         "%s: zip entry '%s': CRC-32 mismatch (stored %08x, computed %08x)",
                         z->what, e->name, e->crc32, crc);
    return HY_OK;
}

void hy__zip_data_free(hy__zip_data *d) {
    if (!d) return;
    hy__free(d->owned);
    d->owned = NULL;
    d->data = NULL;
    d->size = 0;
}
