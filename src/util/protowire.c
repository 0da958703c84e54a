#include "util/protowire.h"

#include <stdio.h>
#include <string.h>

void tn_proto_begin(TnProtoReader *r, const void *data, size_t size) {
    r->data = data;
    r->size = size;
    r->at = 0;
}

/* A varint is at most 10 bytes (64 bits in 7-bit groups); the 10th may only
 * carry the top bit. */
static int read_varint(TnProtoReader *r, uint64_t *value, char *why, size_t why_cap, const char *what) {
    uint64_t v = 0;
    size_t start = r->at;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->at >= r->size) {
            snprintf(why, why_cap, "the %s at byte %zu is cut off by the end of the data", what, start);
            return -1;
        }
        uint8_t byte = r->data[r->at++];
        if (shift == 63 && byte > 1) break;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *value = v;
            return 0;
        }
    }
    snprintf(why, why_cap, "the %s at byte %zu is longer than 64 bits", what, start);
    return -1;
}

static int take(TnProtoReader *r, size_t n, const uint8_t **at, char *why, size_t why_cap, uint32_t number) {
    if (n > r->size - r->at) {
        snprintf(why, why_cap, "field %u at byte %zu needs %zu bytes but only %zu remain", number, r->at, n,
                 r->size - r->at);
        return -1;
    }
    *at = r->data + r->at;
    r->at += n;
    return 0;
}

int tn_proto_next(TnProtoReader *r, TnProtoField *f, char *why, size_t why_cap) {
    if (r->at >= r->size) return 0;
    uint64_t key;
    memset(f, 0, sizeof *f);
    f->offset = r->at;
    if (read_varint(r, &key, why, why_cap, "field key")) return -1;
    f->wire_type = (int)(key & 7);
    if (key >> 3 == 0 || key >> 3 > 0x1fffffff) {
        snprintf(why, why_cap, "invalid field number %llu at byte %zu", (unsigned long long)(key >> 3), f->offset);
        return -1;
    }
    f->number = (uint32_t)(key >> 3);
    const uint8_t *bytes;
    switch (f->wire_type) {
    case TN_WIRE_VARINT:
        return read_varint(r, &f->value, why, why_cap, "varint value") ? -1 : 1;
    case TN_WIRE_FIXED64:
    case TN_WIRE_FIXED32: {
        size_t n = f->wire_type == TN_WIRE_FIXED64 ? 8 : 4;
        if (take(r, n, &bytes, why, why_cap, f->number)) return -1;
        for (size_t i = 0; i < n; i++) f->value |= (uint64_t)bytes[i] << (8 * i);
        return 1;
    }
    case TN_WIRE_BYTES: {
        uint64_t length;
        if (read_varint(r, &length, why, why_cap, "length")) return -1;
        if (take(r, length > SIZE_MAX ? SIZE_MAX : (size_t)length, &f->bytes, why, why_cap, f->number)) return -1;
        f->length = (size_t)length;
        return 1;
    }
    default:
        snprintf(why, why_cap, "field %u at byte %zu has wire type %d (%s), which is not supported", f->number,
                 f->offset, f->wire_type, tn_proto_wire_name(f->wire_type));
        return -1;
    }
}

float tn_proto_float(const TnProtoField *f) {
    uint32_t bits = (uint32_t)f->value;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

const char *tn_proto_wire_name(int wire_type) {
    static const char *const names[8] = {"varint", "fixed64", "bytes", "group start",
                                         "group end", "fixed32", "invalid", "invalid"};
    return names[wire_type & 7];
}
