/* Weights-format names and content sniffing (never by extension). */
#include "io/weights.h"

#include <string.h>

const char *hy__wformat_name(hy__wformat f) {
    switch (f) {
    case HY_WFORMAT_PT: return "pt";
    case HY_WFORMAT_PT_LEGACY: return "pt-legacy";
    case HY_WFORMAT_SAFETENSORS: return "safetensors";
    case HY_WFORMAT_ONNX: return "onnx";
    default: return "unknown";
    }
}

// --- ONNX sniffing -------------------------------------------------------------------
// An ONNX file is a protobuf ModelProto with no magic. Serializers emit fields in field
// number order, so a real file starts with ir_version (field 1, varint: tag 0x08) and then
// producer_name (2), producer_version (3), domain (4), model_version (5), doc_string (6),
// graph (7), opset_import (8), metadata_props (14)... We accept a prefix that parses as
// such fields with the right wire types and ir_version in 1..20, and require at least two
// fields (or a lone field that fills the buffer) so short random bytes do not match.

/* Reads a varint at p[*i]; false when truncated or longer than 10 bytes. */
static bool read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v) {
    uint64_t r = 0;
    for (int k = 0; k < 10; k++) {
        if (*i >= len) return false;
        uint8_t b = p[(*i)++];
        r |= (uint64_t)(b & 0x7f) << (7 * k);
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Wire type ModelProto uses for a field number, or -1 when not a ModelProto field:
 * 1 ir_version and 5 model_version are varints (0); 2 producer_name, 3 producer_version,
 * 4 domain, 6 doc_string, 7 graph, 8 opset_import, 14 metadata_props, 20 training_info,
 * 25 functions and 26 configuration are length-delimited (2). */
static int model_proto_wire_type(uint64_t field) {
    if (field == 1 || field == 5) return 0;
    if ((field >= 2 && field <= 8) || field == 14 || field == 20 || field == 25 || field == 26)
        return 2;
    return -1;
}

static bool looks_like_onnx(const uint8_t *p, size_t len) {
    size_t i = 0;
    int fields = 0;
    uint64_t prev_field = 0;
    while (i < len && fields < 4) {
        uint64_t tag, v;
        if (!read_varint(p, len, &i, &tag)) return fields >= 2;
        uint64_t field = tag >> 3;
        int wt = (int)(tag & 7);
        if (model_proto_wire_type(field) != wt || field < prev_field) return false;
        if (fields == 0 && field != 1 && field != 2 && field != 7) return false;
        if (!read_varint(p, len, &i, &v)) return fields >= 1;
        if (field == 1 && (v < 1 || v > 20)) return false; /* ir_version */
        if (wt == 2) {
            if (field == 7 && v == 0) return false; /* an empty graph is no model */
            size_t avail = len - i;
            if (field >= 2 && field <= 4) { /* names: printable text */
                for (size_t k = 0; k < HY_MIN(avail, (size_t)v); k++)
                    if (p[i + k] < 0x20 || p[i + k] == 0x7f) return false;
            }
            if (v > avail) return fields >= 1; /* runs past a sniffing prefix */
            i += (size_t)v;
        }
        prev_field = field;
        fields++;
    }
    return fields >= 2 || (fields == 1 && i == len);
}

hy__wformat hy__wformat_detect(const uint8_t *buf, size_t len) {
    if (!buf || len < 4) return HY_WFORMAT_UNKNOWN;
    /* torch.save >= 1.6: a zip (local file header, or an empty archive's end record). */
    if (buf[0] == 'P' && buf[1] == 'K' &&
        ((buf[2] == 3 && buf[3] == 4) || (buf[2] == 5 && buf[3] == 6)))
        return HY_WFORMAT_PT;
    /* Legacy torch.save: pickle PROTO opcode (0x80) with protocol 2..5; it starts with the
     * pickled magic number 0x1950a86a20f9469cfc6c (0x80 0x02 0x8a 0x0a ...). */
    if (buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5) return HY_WFORMAT_PT_LEGACY;
    /* safetensors: u64 LE header length N, then a JSON object. */
    if (len >= 10) {
        uint64_t n = 0;
        for (int k = 7; k >= 0; k--) n = (n << 8) | buf[k];
        if (n >= 2 && n <= (uint64_t)len - 8 && buf[8] == '{') return HY_WFORMAT_SAFETENSORS;
    }
    if (looks_like_onnx(buf, len)) return HY_WFORMAT_ONNX;
    return HY_WFORMAT_UNKNOWN;
}
