/* SHA-256 through libcrypto's EVP interface (the library already links libcrypto). */
#include "io/sha256.h"

#include <openssl/evp.h>

hy_status hy__sha256_init(hy__sha256_ctx *h) {
    h->ctx = NULL;
    h->failed = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) return hy__error(HY_ERR_NOMEM, "sha256: out of memory");
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        return hy__error(HY_ERR_IO, "sha256: libcrypto could not initialise SHA-256");
    }
    h->ctx = c;
    return HY_OK;
}

void hy__sha256_update(hy__sha256_ctx *h, const void *p, size_t n) {
    if (!h->ctx || n == 0) return;
    if (EVP_DigestUpdate(h->ctx, p, n) != 1) h->failed = 1;
}

hy_status hy__sha256_final(hy__sha256_ctx *h, uint8_t out[HY_SHA256_LEN]) {
    if (!h->ctx) return hy__error(HY_ERR_INVALID_ARG, "sha256: final without init");
    unsigned len = 0;
    int ok = !h->failed && EVP_DigestFinal_ex(h->ctx, out, &len) == 1 && len == HY_SHA256_LEN;
    hy__sha256_abort(h);
    if (!ok) return hy__error(HY_ERR_IO, "sha256: libcrypto digest failed");
    return HY_OK;
}

void hy__sha256_abort(hy__sha256_ctx *h) {
    if (h && h->ctx) EVP_MD_CTX_free(h->ctx);
    if (h) h->ctx = NULL;
}

hy_status hy__sha256_buf(const void *p, size_t n, uint8_t out[HY_SHA256_LEN]) {
    hy__sha256_ctx h = {0};
    hy_status st = hy__sha256_init(&h);
    if (st) return st;
    hy__sha256_update(&h, p, n);
    return hy__sha256_final(&h, out);
}

void hy__sha256_hex(const uint8_t d[HY_SHA256_LEN], char hex[HY_SHA256_HEX_LEN + 1]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < HY_SHA256_LEN; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[HY_SHA256_HEX_LEN] = '\0';
}

hy_status hy__sha256_file(const char *path, char hex[HY_SHA256_HEX_LEN + 1]) {
    hy__map m;
    hy_status st = hy__map_open(path, &m);
    if (st) return st;
    uint8_t d[HY_SHA256_LEN];
    st = hy__sha256_buf(m.data, m.size, d);
    hy__map_close(&m);
    if (st) return hy__error_prefix(st, "%s", path);
    hy__sha256_hex(d, hex);
    return HY_OK;
}
