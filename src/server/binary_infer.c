/* Triton's binary tensor data extension (docs/http-api.md, "Binary tensors"): the pieces that
 * touch raw bytes. An infer body is a JSON header of Inference-Header-Content-Length bytes,
 * then each binary input's binary_data_size bytes, in input order; tensors are little-endian,
 * row-major, unpadded. routes.c parses the header and checks that the sizes add up. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "server/server_impl.h"

#define HEADER_LENGTH_DIGITS 19 /* < 2^63: no overflow below */

int hy__v2_header_length(const char *value, size_t body_len, size_t *out, char *err, size_t cap) {
    size_t n = value ? strlen(value) : 0, v = 0;
    if (n == 0 || n > HEADER_LENGTH_DIGITS) {
        snprintf(err, cap, "Inference-Header-Content-Length: '%.32s' is not a byte count",
                 value ? value : "");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (value[i] < '0' || value[i] > '9') {
            snprintf(err, cap, "Inference-Header-Content-Length: '%.32s' is not a byte count",
                     value);
            return -1;
        }
        v = v * 10 + (size_t)(value[i] - '0');
    }
    if (v > body_len) {
        snprintf(err, cap,
                 "Inference-Header-Content-Length: %zu is past the end of the %zu byte body", v,
                 body_len);
        return -1;
    }
    *out = v;
    return 0;
}

int hy__v2_binary_floats(const uint8_t *p, size_t n, float *x, char *err, size_t cap) {
    for (size_t i = 0; i < n; i++, p += 4) {
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &u, sizeof f);
        /* the network expects pixels / 255; larger values overflow its activations */
        if (!isfinite(f) || !(f >= 0.0f && f <= 1.0f)) {
            snprintf(err, cap,
                     "inputs[0] binary data, element %zu: %.9g is not a finite FP32 value in "
                     "[0, 1] (pixel / 255)",
                     i, (double)f);
            return -1;
        }
        x[i] = f;
    }
    return 0;
}

void hy__v2_binary_put(const float *x, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++, out += 4) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        out[0] = (uint8_t)u;
        out[1] = (uint8_t)(u >> 8);
        out[2] = (uint8_t)(u >> 16);
        out[3] = (uint8_t)(u >> 24);
    }
}
