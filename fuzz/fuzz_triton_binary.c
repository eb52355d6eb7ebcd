/* Triton's binary tensor data extension, the body splitter (routes.c, binary_infer.c): an infer
 * body cut at the Inference-Header-Content-Length into a JSON header and binary sections. Input:
 * byte 0..1 pick the header length (a 16-bit count; 0xffff = the header value is the text up to
 * the first '\n' instead, as a client sent it), the rest is the body. The body is an exact heap
 * copy without a terminator (ASan catches a read past it). On success the shape and every value
 * are as promised; on failure there is always a reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t pick = (size_t)data[0] | (size_t)data[1] << 8;
    const uint8_t *in = data + 2;
    size_t len = size - 2;
    char err[512], value[64];
    size_t header_len = 0;
    err[0] = '\0';
    if (pick == 0xffff) { /* "VALUE\nBODY": the header as text */
        const uint8_t *nl = memchr(in, '\n', len);
        size_t vl = nl ? (size_t)(nl - in) : len;
        if (vl >= sizeof value) vl = sizeof value - 1;
        memcpy(value, in, vl);
        value[vl] = '\0';
        size_t skip = nl ? (size_t)(nl - in) + 1 : len;
        in += skip;
        len -= skip;
        if (hy__v2_header_length(value, len, &header_len, err, sizeof err) != 0) {
            if (!err[0]) __builtin_trap();
            return 0;
        }
        if (header_len > len) __builtin_trap();
    } else {
        header_len = pick; /* may be past the body: the parser must refuse it */
    }
    char *exact = malloc(len ? len : 1);
    if (!exact) abort();
    memcpy(exact, in, len);
    hy__v2_input v;
    memset(&v, 0, sizeof v);
    if (hy__v2_parse_infer_ex(exact, len, header_len, 64, &v, err, sizeof err) == 0) {
        if (header_len > len || v.h < 32 || v.w < 32 || v.h > 64 || v.w > 64 || v.h % 32 ||
            v.w % 32 || !v.x || (v.binary_out != 0 && v.binary_out != 1))
            __builtin_trap();
        size_t n = (size_t)3 * v.h * v.w;
        /* a binary input fills exactly the bytes after the header */
        if (len - header_len != 0 && len - header_len != n * sizeof(float)) __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (!(v.x[i] >= 0.0f && v.x[i] <= 1.0f)) __builtin_trap();
        hy__v2_input_free(&v);
    } else if (!err[0] || v.x) {
        __builtin_trap();
    }
    free(exact);
    return 0;
}
