/* SHA-256 (FIPS 180-4) over Nettle (GnuTLS's crypto library: SHA-NI where the CPU has it).
 *
 *   uint8_t d[32]; char hex[65];
 *   if (hy__sha256_buf(buf, len, d) == HY_OK) hy__sha256_hex(d, hex);
 *
 * Streaming: hy__sha256_init, any number of hy__sha256_update, then hy__sha256_final
 * (which releases the context whatever it returns) or hy__sha256_abort. */
#ifndef HY_CORE_SHA256_H
#define HY_CORE_SHA256_H

#include "core/core.h"

#define HY_SHA256_LEN     32 /* digest bytes */
#define HY_SHA256_HEX_LEN 64 /* lowercase hex characters, without the NUL */

typedef struct hy__sha256_ctx {
    void *ctx; /* struct sha256_ctx (nettle), allocated by init */
} hy__sha256_ctx;

/* Errors: HY_ERR_NOMEM. */
hy_status hy__sha256_init(hy__sha256_ctx *h);
void hy__sha256_update(hy__sha256_ctx *h, const void *p, size_t n);
/* Writes the digest and frees the context. */
hy_status hy__sha256_final(hy__sha256_ctx *h, uint8_t out[HY_SHA256_LEN]);
void hy__sha256_abort(hy__sha256_ctx *h); /* frees the context without a digest; idempotent */

/* One-shot digest of p[0, n). */
hy_status hy__sha256_buf(const void *p, size_t n, uint8_t out[HY_SHA256_LEN]);
/* Lowercase hex of a digest, NUL-terminated (65 bytes). */
void hy__sha256_hex(const uint8_t d[HY_SHA256_LEN], char hex[HY_SHA256_HEX_LEN + 1]);
/* Digest of a whole file (mmapped), as lowercase hex. Errors name the path. */
hy_status hy__sha256_file(const char *path, char hex[HY_SHA256_HEX_LEN + 1]);

#endif
