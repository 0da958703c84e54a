/* protowire.h: reading the protobuf wire format, one field at a time.
 *
 * Enough of https://protobuf.dev/programming-guides/encoding/ to read the
 * SentencePiece model file (tokenizer/sentencepiece.h) without a protobuf
 * library: a message is a sequence of (key, value) records, the key a
 * varint holding field number << 3 | wire type, the value a varint (type 0),
 * 8 bytes (type 1), a length-prefixed byte string (type 2, which is also how
 * an embedded message is stored) or 4 bytes (type 5). Groups (types 3 and 4)
 * are obsolete and refused.
 *
 * The reader never reads outside the buffer it was given: a truncated or
 * corrupt message makes tn_proto_next return -1 with a one-line reason (the
 * caller adds the file name). Byte strings point into the caller's buffer,
 * which must outlive them; nothing is allocated.
 */
#ifndef TN_UTIL_PROTOWIRE_H
#define TN_UTIL_PROTOWIRE_H

#include <stddef.h>
#include <stdint.h>

enum { TN_WIRE_VARINT = 0, TN_WIRE_FIXED64 = 1, TN_WIRE_BYTES = 2, TN_WIRE_FIXED32 = 5 };

typedef struct TnProtoReader {
    const uint8_t *data;
    size_t size, at;
} TnProtoReader;

typedef struct TnProtoField {
    uint32_t number;      /* 1 .. 2^29 - 1 */
    int wire_type;        /* TN_WIRE_* */
    uint64_t value;       /* varint, or the little-endian fixed32 / fixed64 bits */
    const uint8_t *bytes; /* TN_WIRE_BYTES: the payload, inside the reader's buffer */
    size_t length;        /* TN_WIRE_BYTES: its length */
    size_t offset;        /* where the field's key starts in the buffer */
} TnProtoField;

void tn_proto_begin(TnProtoReader *r, const void *data, size_t size);
/* Reads the next field: 1 if one was read, 0 at the end of the buffer, -1
 * if the message is malformed (truncated value, varint over 10 bytes, length
 * past the end, field number 0 or too large, group or unknown wire type);
 * then *why says what, with the byte offset. */
int tn_proto_next(TnProtoReader *r, TnProtoField *f, char *why, size_t why_cap);

/* The float stored in a fixed32 field. */
float tn_proto_float(const TnProtoField *f);

/* A field's wire type name ("varint", "bytes", ...) for error messages. */
const char *tn_proto_wire_name(int wire_type);

#endif
