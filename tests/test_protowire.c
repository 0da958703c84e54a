/* test_protowire: the protobuf wire reader (util/protowire.h) against an
 * encoder written here from the format's definition, on random messages;
 * then every malformation it must refuse, every truncation of a valid
 * message, and random corruption (which must never read out of bounds:
 * the sanitizer build checks that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/protowire.h"
#include "util/rng.h"

#define N_FIELDS 200

typedef struct Expected {
    uint32_t number;
    int wire_type;
    uint64_t value;
    size_t offset, length; /* TN_WIRE_BYTES: payload at offset in the buffer */
} Expected;

static size_t put_varint(uint8_t *out, uint64_t v) {
    size_t n = 0;
    do {
        out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* A value whose varint length varies: 0..10 bytes of random bits. */
static uint64_t random_width(TnRng *rng) {
    int bits = (int)tn_rng_below(rng, 65);
    uint64_t v = tn_rng_next(rng);
    return bits == 64 ? v : v & ((1ull << bits) - 1);
}

static size_t random_message(TnRng *rng, uint8_t *buf, Expected *fields) {
    static const int wires[4] = {TN_WIRE_VARINT, TN_WIRE_FIXED64, TN_WIRE_BYTES, TN_WIRE_FIXED32};
    size_t n = 0;
    for (int i = 0; i < N_FIELDS; i++) {
        Expected *e = &fields[i];
        e->number = 1 + (uint32_t)tn_rng_below(rng, tn_rng_below(rng, 2) ? 40 : 0x1fffffff);
        e->wire_type = wires[tn_rng_below(rng, 4)];
        n += put_varint(buf + n, (uint64_t)e->number << 3 | (uint64_t)e->wire_type);
        if (e->wire_type == TN_WIRE_VARINT) {
            e->value = random_width(rng);
            n += put_varint(buf + n, e->value);
        } else if (e->wire_type == TN_WIRE_BYTES) {
            e->length = tn_rng_below(rng, 300);
            n += put_varint(buf + n, e->length);
            e->offset = n;
            for (size_t k = 0; k < e->length; k++) buf[n++] = (uint8_t)tn_rng_below(rng, 256);
        } else {
            size_t width = e->wire_type == TN_WIRE_FIXED64 ? 8 : 4;
            e->value = tn_rng_next(rng) >> (64 - 8 * width);
            for (size_t k = 0; k < width; k++) buf[n++] = (uint8_t)(e->value >> (8 * k));
        }
    }
    return n;
}

static void test_round_trip(TnRng *rng, uint8_t *buf, Expected *fields, size_t *size) {
    *size = random_message(rng, buf, fields);
    TnProtoReader r;
    TnProtoField f;
    char why[256];
    int i = 0, rc, bad = 0;
    tn_proto_begin(&r, buf, *size);
    while ((rc = tn_proto_next(&r, &f, why, sizeof why)) > 0 && i < N_FIELDS) {
        const Expected *e = &fields[i++];
        bad += f.number != e->number || f.wire_type != e->wire_type;
        if (e->wire_type == TN_WIRE_BYTES) bad += f.length != e->length || f.bytes != buf + e->offset;
        else bad += f.value != e->value;
    }
    CHECK(rc == 0 && i == N_FIELDS && bad == 0, "round trip: %d of %d fields read, %d differ (rc %d: %s)", i,
          N_FIELDS, bad, rc, rc < 0 ? why : "");
}

/* Reads buf to the end; returns 0 if it parsed, -1 with the reason. */
static int read_all(const uint8_t *buf, size_t size, char *why, size_t cap) {
    TnProtoReader r;
    TnProtoField f;
    int rc;
    tn_proto_begin(&r, buf, size);
    while ((rc = tn_proto_next(&r, &f, why, cap)) > 0) {}
    return rc;
}

static void expect_malformed(const char *name, const void *bytes, size_t size, const char *reason) {
    char why[256] = "";
    uint8_t *copy = malloc(size ? size : 1); /* exactly sized: a read past the end shows under ASan */
    memcpy(copy, bytes, size);
    int rc = read_all(copy, size, why, sizeof why);
    CHECK(rc == -1 && strstr(why, reason), "%s: rc %d, reason \"%s\" (expected one with \"%s\")", name, rc, why,
          reason);
    free(copy);
}

static void test_malformed(void) {
    expect_malformed("key cut off", "\x80", 1, "cut off");
    expect_malformed("varint value cut off", "\x08\xff\xff", 3, "cut off");
    expect_malformed("11-byte varint", "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, "longer than 64");
    expect_malformed("10th byte above 1", "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, "longer than 64");
    expect_malformed("length past the end", "\x0a\x05" "abc", 5, "only 3 remain");
    expect_malformed("huge length", "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, "remain");
    expect_malformed("field number 0", "\x00\x01", 2, "invalid field number 0");
    expect_malformed("field number too large", "\xf8\xff\xff\xff\x1f\x00", 6, "invalid field number");
    expect_malformed("group start", "\x0b", 1, "group start");
    expect_malformed("group end", "\x0c", 1, "group end");
    expect_malformed("wire type 6", "\x0e", 1, "wire type 6");
    expect_malformed("fixed32 cut off", "\x0d\x01\x02", 3, "needs 4 bytes");
    expect_malformed("fixed64 cut off", "\x09\x01\x02\x03\x04\x05\x06\x07", 8, "needs 8 bytes");
    char why[256];
    /* The largest values that are valid. */
    CHECK(read_all((const uint8_t *)"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, why, sizeof why) == 0,
          "2^64 - 1 is a valid varint: %s", why);
    TnProtoReader r;
    TnProtoField f;
    tn_proto_begin(&r, "\xf8\xff\xff\xff\x0f\x00\x15\x00\x00\xc0\x3f", 11);
    int first = tn_proto_next(&r, &f, why, sizeof why);
    CHECK(first == 1 && f.number == 0x1fffffff && f.value == 0, "field 2^29 - 1: rc %d number %u", first, f.number);
    int second = tn_proto_next(&r, &f, why, sizeof why);
    CHECK(second == 1 && f.number == 2 && tn_proto_float(&f) == 1.5f, "a fixed32 float: rc %d value %g", second,
          (double)tn_proto_float(&f));
}

/* Cutting a valid message anywhere gives either a shorter valid message
 * (a cut between fields) or an error; a cut inside a field must be an
 * error. Exactly-sized copies let the sanitizer see any overread. */
static void test_truncations(const uint8_t *buf, size_t size) {
    uint8_t *boundary = calloc(size + 1, 1);
    TnProtoReader r;
    TnProtoField f;
    char why[256];
    tn_proto_begin(&r, buf, size);
    boundary[0] = 1;
    while (tn_proto_next(&r, &f, why, sizeof why) > 0) boundary[r.at] = 1;
    int wrong = 0;
    for (size_t at = 0; at <= size; at++) {
        uint8_t *copy = malloc(at ? at : 1);
        memcpy(copy, buf, at);
        int rc = read_all(copy, at, why, sizeof why);
        wrong += boundary[at] ? rc != 0 : rc != -1;
        free(copy);
    }
    CHECK(wrong == 0, "%d of %zu truncations read wrongly (a cut inside a field must fail, between fields succeed)",
          wrong, size + 1);
    free(boundary);
}

static void test_corruption(TnRng *rng, const uint8_t *buf, size_t size) {
    int failed = 0, trials = 2000;
    char why[256];
    for (int t = 0; t < trials; t++) {
        size_t n = 1 + tn_rng_below(rng, size < 400 ? size : 400);
        uint8_t *copy = malloc(n);
        memcpy(copy, buf, n);
        for (int k = 0; k < 3; k++) copy[tn_rng_below(rng, n)] = (uint8_t)tn_rng_below(rng, 256);
        failed += read_all(copy, n, why, sizeof why) != 0;
        free(copy);
    }
    /* The count of failures is not predictable; reaching here without a
     * sanitizer report is the check, and some corruption must be caught. */
    CHECK(failed > 0 && failed < trials, "corruption: %d of %d corrupted prefixes refused", failed, trials);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnRng rng;
    tn_rng_seed(&rng, seed, 0);
    static uint8_t buf[N_FIELDS * 320];
    static Expected fields[N_FIELDS];
    size_t size;
    test_round_trip(&rng, buf, fields, &size);
    test_malformed();
    test_truncations(buf, size);
    test_corruption(&rng, buf, size);
    return TEST_DONE(argv[0]);
}
