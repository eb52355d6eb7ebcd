/* safetensors: hotyolo's native weights format (reader and writer).
 *
 * File layout (all integers little-endian; docs/formats.md has the full description):
 *   [0, 8)           u64 N: header length in bytes
 *   [8, 8+N)         UTF-8 JSON object: "__metadata__" (string -> string, optional) and
 *                    name -> {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
 *   [8+N, size)      data section; offsets are relative to its start. The tensors cover it
 *                    exactly: sorted by offset, each begins where the previous one ends and
 *                    the last ends at the end of the file (the reference reader's rule).
 * hotyolo's writer pads the header with spaces so that 8+N is a multiple of 64, and lays
 * tensors out so that every tensor is aligned to its element size and every tensor whose
 * byte size is a multiple of 64 starts 64-byte aligned (no gaps: holes are invalid).
 *
 *   hy__st_file *f;
 *   if (hy__st_open("yolov8n.safetensors", 1, &f)) { puts(hy_last_error()); return; }
 *   const hy__wtensor *w = hy__st_find(f, "model.0.conv.weight"); // points into the map
 *   hy__st_close(f);
 *
 * A hy__st_file is immutable after open; concurrent readers are safe. */
#ifndef HY_IO_SAFETENSORS_H
#define HY_IO_SAFETENSORS_H

#include "core/core.h"
#include "core/sha256.h"
#include "io/weights.h"

#define HY_ST_ALIGN           64         /* data start (and tensor) alignment we write */
#define HY_ST_MAX_HEADER      100000000u /* same limit as the reference reader */
#define HY_ST_FORMAT_VERSION  "1"        /* "hotyolo.format_version" we write and read */
#define HY_ST_KEY_DATA_SHA256 "hotyolo.data_sha256"
/* XXH3-64 of the data section in 4 MiB blocks (see hy__st_data_xxh3): a checksum against
 * storage corruption, cheap enough to check on every load of a cache entry; not a defence
 * against a deliberate edit (sha256 is). 16 lowercase hex digits. */
#define HY_ST_KEY_DATA_XXH3   "hotyolo.data_xxh3"
#define HY_ST_XXH3_BLOCK      ((size_t)4 << 20)

/* verify_hash levels of hy__st_open */
enum { HY_ST_VERIFY_NONE = 0, HY_ST_VERIFY_SHA256 = 1, HY_ST_VERIFY_XXH3 = 2 };

typedef struct hy__st_file hy__st_file;

/* Maps `path` read-only and validates the whole header (see the checks in safetensors.c);
 * tensor data is not copied. With verify_hash HY_ST_VERIFY_SHA256 (or any value other than
 * the two below) the data section is re-hashed and compared with metadata
 * "hotyolo.data_sha256"; with HY_ST_VERIFY_XXH3 its block checksum is compared with
 * "hotyolo.data_xxh3" (missing key or mismatch: HY_ERR_FORMAT); HY_ST_VERIFY_NONE: neither.
 * Errors name the file and the field: HY_ERR_IO (cannot open/map), HY_ERR_FORMAT (invalid
 * file), HY_ERR_UNSUPPORTED (a safetensors dtype hotyolo lacks, e.g. U16; a newer
 * hotyolo.format_version), HY_ERR_NOMEM. The recorded "hotyolo.arch" is
 * reported (hy__wsource.arch), not judged. */
hy_status hy__st_open(const char *path, int verify_hash, hy__st_file **out);
/* Unmaps and frees; NULL is a no-op. Pointers obtained from f die with it. */
void hy__st_close(hy__st_file *f);

/* Tensors in header (JSON) order; for files we write that is the order given to the
 * writer. Returned pointers are owned by f. */
size_t hy__st_count(const hy__st_file *f);
const hy__wtensor *hy__st_tensor(const hy__st_file *f, size_t i); /* NULL if out of range */
const hy__wtensor *hy__st_find(const hy__st_file *f,
                               const char *name);              /* NULL if absent; O(log n) */
uint64_t hy__st_tensor_offset(const hy__st_file *f, size_t i); /* file offset of tensor i's data */

/* __metadata__ value for key, NULL if absent (owned by f). */
const char *hy__st_meta(const hy__st_file *f, const char *key);
size_t hy__st_meta_count(const hy__st_file *f);
/* i-th metadata entry in header order; false when i is out of range. */
bool hy__st_meta_at(const hy__st_file *f, size_t i, const char **key, const char **value);

/* The data section's checksum as recorded under HY_ST_KEY_DATA_XXH3: XXH3-64 (seed 0) of each
 * HY_ST_XXH3_BLOCK-byte block (the last one shorter), then XXH3-64 of those block values as
 * little-endian u64s; hex[16] + NUL. Blocks are hashed on up to 4 threads (load time only). */
hy_status hy__st_data_xxh3(const hy__st_file *f, char hex[17]);

uint64_t hy__st_header_len(const hy__st_file *f);  /* N */
uint64_t hy__st_data_offset(const hy__st_file *f); /* 8 + N: file offset of the data section */
uint64_t hy__st_data_size(const hy__st_file *f);
const char *hy__st_path(const hy__st_file *f);

/* Fills a borrowed view of f (tensors, class names: owned by f, valid until hy__st_close)
 * with format = HY_WFORMAT_SAFETENSORS and the hints from hotyolo's metadata keys
 * (hotyolo.nc, .names, .variant -> scale, .imgsz, .fused). Without "hotyolo.fused", fused is
 * inferred from the names: 1 when no "*.bn.*" tensor exists and some "*.conv.bias" does.
 * depth/width multiples and max_channels are 0 (the file does not store them). */
hy_status hy__st_source(const hy__st_file *f, hy__wsource *out);

/* For `hotyolo verify`: opens and validates path, hashes the data section into
 * computed_hex, and sets *matches to 1 (matches the recorded "hotyolo.data_sha256"),
 * 0 (differs), or -1 (the file records no hash). Both outputs are written only on HY_OK. */
hy_status hy__st_verify(const char *path, char computed_hex[HY_SHA256_HEX_LEN + 1], int *matches);

/* Writes tensors (data numel * itemsize bytes each, C order, little-endian) with the given
 * metadata plus "hotyolo.data_sha256" (sha256 of the data section, computed here; a caller
 * value for that key is ignored). JSON order: "__metadata__" first (caller keys in given
 * order, then the hash), then the tensors in given order. Writes a temporary file in the
 * same directory, fsyncs it and renames it over path only on success: on failure path is
 * untouched and no temporary file remains. Errors: HY_ERR_INVALID_ARG (path is a directory,
 * a bad tensor: NULL/duplicate/"__metadata__"/non-UTF-8 name, bad dtype/shape/numel; a
 * duplicate or non-UTF-8 metadata key/value), HY_ERR_IO, HY_ERR_NOMEM. */
hy_status hy__st_write(const char *path, const hy__wtensor *tensors, size_t n,
                       const char *const *meta_keys, const char *const *meta_values, size_t n_meta);

/* Writes src's tensors with the full hotyolo metadata (docs/formats.md): format,
 * format_version, arch, variant (when src->scale is set), nc and names (when known), imgsz
 * (src->imgsz or 640), stride, fused, source_sha256 (when source_sha256_hex is non-NULL)
 * and data_sha256. Errors as hy__st_write. */
hy_status hy__st_write_source(const char *path, const hy__wsource *src,
                              const char *source_sha256_hex);

/* safetensors dtype string ("F32", "F16", "BF16", "I64", "I32", "U8", "I8", "F64", "BOOL"). */
const char *hy__st_dtype_str(hy_dtype t);

#endif
