#include "tokenizer/sentencepiece.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/protowire.h"

/* sentencepiece_model.proto's numbers. */
enum { PIECE_NORMAL = 1, PIECE_UNKNOWN, PIECE_CONTROL, PIECE_USER_DEFINED, PIECE_UNUSED, PIECE_BYTE };
enum { MODEL_UNIGRAM = 1, MODEL_BPE, MODEL_WORD, MODEL_CHAR };

typedef struct Piece {
    char *text;
    float score;
    int type;
} Piece;

/* What the loader uses of a ModelProto, with the proto2 defaults. */
typedef struct ModelProto {
    Piece *pieces;
    int n_pieces, capacity;
    uint64_t model_type;
    int byte_fallback, treat_whitespace_as_suffix;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    char normalizer_name[64];
    size_t charsmap_length;
} ModelProto;

static void free_pieces(ModelProto *m) {
    for (int i = 0; i < m->n_pieces; i++) free(m->pieces[i].text);
    free(m->pieces);
    m->pieces = NULL;
    m->n_pieces = 0;
}

/* ---- the wire format --------------------------------------------------- */

/* Reads one field of `message`, or fails naming the file. */
static int next_field(TnProtoReader *r, TnProtoField *f, const char *message, const char *source, TnError *err) {
    char why[256];
    int rc = tn_proto_next(r, f, why, sizeof why);
    if (rc < 0) return tn_fail(err, "%s: not a valid SentencePiece model: in %s, %s", source, message, why);
    return rc;
}

static int expect_wire(const TnProtoField *f, int wire_type, const char *message, const char *source, TnError *err) {
    if (f->wire_type == wire_type) return 0;
    return tn_fail(err, "%s: not a valid SentencePiece model: %s field %u is %s, expected %s", source, message,
                   f->number, tn_proto_wire_name(f->wire_type), tn_proto_wire_name(wire_type));
}

/* message SentencePiece { string piece = 1; float score = 2; Type type = 3; } */
static int read_piece(ModelProto *m, const TnProtoField *outer, const char *source, TnError *err) {
    TnProtoReader r;
    TnProtoField f;
    Piece p = {NULL, 0, PIECE_NORMAL};
    const uint8_t *text = NULL;
    size_t length = 0;
    int rc;
    char message[64];
    snprintf(message, sizeof message, "piece %d", m->n_pieces);
    tn_proto_begin(&r, outer->bytes, outer->length);
    while ((rc = next_field(&r, &f, message, source, err)) > 0) {
        int wire = f.number == 1 ? TN_WIRE_BYTES : f.number == 2 ? TN_WIRE_FIXED32 : TN_WIRE_VARINT;
        if (f.number <= 3 && expect_wire(&f, wire, message, source, err)) return -1;
        if (f.number == 1) { text = f.bytes; length = f.length; }
        else if (f.number == 2) p.score = tn_proto_float(&f);
        else if (f.number == 3) p.type = f.value > 6 ? 0 : (int)f.value;
    }
    if (rc < 0) return -1;
    if (!text || length == 0) return tn_fail(err, "%s: %s has no piece string", source, message);
    if (memchr(text, '\0', length)) return tn_fail(err, "%s: %s contains a NUL byte", source, message);
    if (p.type < PIECE_NORMAL) return tn_fail(err, "%s: %s (\"%.*s\") has an unknown type", source, message,
                                              (int)length, (const char *)text);
    if (!isfinite(p.score)) return tn_fail(err, "%s: %s (\"%.*s\") has a score that is not a finite number",
                                           source, message, (int)length, (const char *)text);
    p.text = tn_malloc(length + 1);
    memcpy(p.text, text, length);
    p.text[length] = '\0';
    if (m->n_pieces == m->capacity) {
        m->capacity = m->capacity ? 2 * m->capacity : 1024;
        if (!(m->pieces = realloc(m->pieces, (size_t)m->capacity * sizeof *m->pieces)))
            tn_die("out of memory reading %s", source);
    }
    m->pieces[m->n_pieces++] = p;
    return 0;
}

/* A scalar field of TrainerSpec or NormalizerSpec and where it is kept. */
typedef enum { KEEP_FLAG, KEEP_NUMBER, KEEP_LENGTH, KEEP_NAME } Keep;
typedef struct FieldRule {
    uint32_t number;
    int wire_type;
    Keep keep;
    size_t offset; /* in ModelProto */
} FieldRule;

/* The TrainerSpec fields that matter for encoding. split_digits (25) and
 * the other splitting rules only shape training: the vocabulary they leave
 * has no piece across a digit, so BPE over it splits digits by itself. */
static const FieldRule trainer_rules[] = {
    {3, TN_WIRE_VARINT, KEEP_NUMBER, offsetof(ModelProto, model_type)},
    {24, TN_WIRE_VARINT, KEEP_FLAG, offsetof(ModelProto, treat_whitespace_as_suffix)},
    {35, TN_WIRE_VARINT, KEEP_FLAG, offsetof(ModelProto, byte_fallback)},
};
static const FieldRule normalizer_rules[] = {
    {1, TN_WIRE_BYTES, KEEP_NAME, offsetof(ModelProto, normalizer_name)},
    {2, TN_WIRE_BYTES, KEEP_LENGTH, offsetof(ModelProto, charsmap_length)},
    {3, TN_WIRE_VARINT, KEEP_FLAG, offsetof(ModelProto, add_dummy_prefix)},
    {4, TN_WIRE_VARINT, KEEP_FLAG, offsetof(ModelProto, remove_extra_whitespaces)},
    {5, TN_WIRE_VARINT, KEEP_FLAG, offsetof(ModelProto, escape_whitespaces)},
};

/* Reads the fields of a spec message that rules name; skips the others. */
static int read_spec(ModelProto *m, const TnProtoField *outer, const char *message, const FieldRule *rules,
                     size_t n_rules, const char *source, TnError *err) {
    TnProtoReader r;
    TnProtoField f;
    int rc;
    tn_proto_begin(&r, outer->bytes, outer->length);
    while ((rc = next_field(&r, &f, message, source, err)) > 0) {
        const FieldRule *rule = NULL;
        for (size_t i = 0; i < n_rules && !rule; i++) rule = rules[i].number == f.number ? &rules[i] : NULL;
        if (!rule) continue;
        if (expect_wire(&f, rule->wire_type, message, source, err)) return -1;
        char *at = (char *)m + rule->offset;
        if (rule->keep == KEEP_FLAG) *(int *)at = f.value != 0;
        else if (rule->keep == KEEP_NUMBER) *(uint64_t *)at = f.value;
        else if (rule->keep == KEEP_LENGTH) *(size_t *)at = f.length;
        else snprintf(at, sizeof m->normalizer_name, "%.*s", (int)f.length, (const char *)f.bytes);
    }
    return rc;
}

/* message ModelProto { repeated SentencePiece pieces = 1; TrainerSpec
 * trainer_spec = 2; NormalizerSpec normalizer_spec = 3; ... } */
static int read_model_proto(ModelProto *m, const void *data, size_t size, const char *source, TnError *err) {
    TnProtoReader r;
    TnProtoField f;
    int rc;
    memset(m, 0, sizeof *m);
    m->model_type = MODEL_UNIGRAM;
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = 1;
    tn_proto_begin(&r, data, size);
    while ((rc = next_field(&r, &f, "the model", source, err)) > 0) {
        if (f.number > 3) continue; /* self-test data, the denormalizer: not used */
        static const char *const names[4] = {"", "pieces", "trainer_spec", "normalizer_spec"};
        if (expect_wire(&f, TN_WIRE_BYTES, names[f.number], source, err)) rc = -1;
        else if (f.number == 1) rc = read_piece(m, &f, source, err);
        else if (f.number == 2)
            rc = read_spec(m, &f, "trainer_spec", trainer_rules, sizeof trainer_rules / sizeof *trainer_rules, source,
                           err);
        else
            rc = read_spec(m, &f, "normalizer_spec", normalizer_rules,
                           sizeof normalizer_rules / sizeof *normalizer_rules, source, err);
        if (rc) break;
    }
    if (rc) free_pieces(m);
    return rc ? -1 : 0;
}

/* ---- checks: what the BPE model can reproduce --------------------------- */

static int check_model(const ModelProto *m, const char *source, TnError *err) {
    static const char *const types[5] = {"?", "unigram", "BPE", "word", "char"};
    if (m->model_type != MODEL_BPE)
        return tn_fail(err, "%s: a SentencePiece %s model; tnllm reads BPE models only (--model_type=bpe)", source,
                       m->model_type < 5 ? types[m->model_type] : "unknown");
    if (m->n_pieces == 0) return tn_fail(err, "%s: the model has no pieces", source);
    if (m->charsmap_length)
        return tn_fail(err, "%s: the normalizer \"%s\" rewrites text (%zu bytes of rules), which tnllm does not "
                            "implement; train with --normalization_rule_name=identity",
                       source, m->normalizer_name, m->charsmap_length);
    if (m->remove_extra_whitespaces)
        return tn_fail(err, "%s: remove_extra_whitespaces is not supported (LLaMA-style models set it false: "
                            "--remove_extra_whitespaces=false)", source);
    if (!m->escape_whitespaces) return tn_fail(err, "%s: escape_whitespaces=false is not supported", source);
    if (m->treat_whitespace_as_suffix)
        return tn_fail(err, "%s: treat_whitespace_as_suffix is not supported", source);
    int unknown = 0, bytes = 0;
    for (int i = 0; i < m->n_pieces; i++) {
        const Piece *p = &m->pieces[i];
        unknown += p->type == PIECE_UNKNOWN;
        bytes += p->type == PIECE_BYTE;
        if (p->type == PIECE_UNUSED)
            return tn_fail(err, "%s: piece %d (\"%s\") is of type UNUSED, which is not supported", source, i, p->text);
        if (p->type == PIECE_USER_DEFINED && tn_utf8_next((const unsigned char *)p->text, strlen(p->text)).length !=
                                                 strlen(p->text))
            return tn_fail(err, "%s: piece %d (\"%s\") is a user-defined symbol of several characters, which "
                                "SentencePiece matches before BPE; not supported", source, i, p->text);
        if (p->type == PIECE_BYTE && !m->byte_fallback)
            return tn_fail(err, "%s: piece %d (\"%s\") is a byte piece but byte_fallback is off", source, i, p->text);
    }
    if (unknown != 1)
        return tn_fail(err, "%s: the model has %d pieces of type UNKNOWN; SentencePiece needs exactly one", source,
                       unknown);
    if (m->byte_fallback && bytes != 256)
        return tn_fail(err, "%s: byte_fallback needs the 256 byte pieces <0x00>..<0xFF>; the model has %d", source,
                       bytes);
    return 0;
}

/* ---- the merges ---------------------------------------------------------- */

typedef struct RankedMerge {
    float score;
    int32_t piece, left, right;
} RankedMerge;

static int by_score_then_ids(const void *a, const void *b) {
    const RankedMerge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->piece != y->piece) return x->piece < y->piece ? -1 : 1;
    if (x->left != y->left) return x->left < y->left ? -1 : 1;
    return (x->right > y->right) - (x->right < y->right);
}

/* A piece that BPE symbols can be: SentencePiece looks up NORMAL and
 * USER_DEFINED pieces (control, unknown and byte pieces never take part). */
static int is_symbol(const ModelProto *m, int32_t id) {
    return id >= 0 && (m->pieces[id].type == PIECE_NORMAL || m->pieces[id].type == PIECE_USER_DEFINED);
}

/* For every piece, each split at a character boundary into two pieces is a
 * merge; ordered as the HF converter orders them (see the header). Merges
 * of equal score share a rank: SentencePiece then takes the leftmost pair. */
static TnMerge *build_merges(const TnBpe *bpe, const ModelProto *m, int32_t **ranks, int *n_merges) {
    size_t count = 0, capacity = 1024;
    RankedMerge *ranked = tn_malloc(capacity * sizeof *ranked);
    for (int32_t id = 0; id < m->n_pieces; id++) {
        const char *text = m->pieces[id].text;
        size_t length = strlen(text);
        if (m->pieces[id].type != PIECE_NORMAL) continue;
        for (size_t cut = tn_utf8_next((const unsigned char *)text, length).length; cut < length;
             cut += tn_utf8_next((const unsigned char *)text + cut, length - cut).length) {
            int32_t left = tn_bpe_find_piece(bpe, text, cut), right = tn_bpe_find_piece(bpe, text + cut, length - cut);
            if (!is_symbol(m, left) || !is_symbol(m, right)) continue;
            if (count == capacity && !(ranked = realloc(ranked, (capacity *= 2) * sizeof *ranked)))
                tn_die("out of memory building merges");
            ranked[count++] = (RankedMerge){m->pieces[id].score, id, left, right};
        }
    }
    qsort(ranked, count, sizeof *ranked, by_score_then_ids);
    TnMerge *merges = tn_malloc((count + 1) * sizeof *merges);
    *ranks = tn_malloc((count + 1) * sizeof **ranks);
    for (size_t i = 0; i < count; i++) {
        merges[i] = (TnMerge){ranked[i].left, ranked[i].right};
        (*ranks)[i] = i > 0 && ranked[i].score == ranked[i - 1].score ? (*ranks)[i - 1] : (int32_t)i;
    }
    free(ranked);
    *n_merges = (int)count;
    return merges;
}

/* ---- building ------------------------------------------------------------ */

int tn_sentencepiece_parse(TnBpe *bpe, const void *data, size_t size, const char *source, TnError *err) {
    ModelProto m;
    memset(bpe, 0, sizeof *bpe);
    if (read_model_proto(&m, data, size, source, err)) return -1;
    if (check_model(&m, source, err)) {
        free_pieces(&m);
        return -1;
    }
    char **pieces = tn_malloc((size_t)m.n_pieces * sizeof *pieces);
    uint8_t *special = tn_calloc((size_t)m.n_pieces, 1);
    int32_t unk_id = -1;
    for (int i = 0; i < m.n_pieces; i++) {
        pieces[i] = m.pieces[i].text; /* the strings now belong to pieces; m.pieces keeps aliases */
        special[i] = m.pieces[i].type == PIECE_UNKNOWN || m.pieces[i].type == PIECE_CONTROL;
        if (m.pieces[i].type == PIECE_UNKNOWN) unk_id = i;
    }
    /* SentencePiece fuses no unknowns: each unknown character is one <unk>. */
    TnBpeOptions options = {.metaspace = 1,
                            .add_prefix = m.add_dummy_prefix ? TN_PREFIX_ALWAYS : TN_PREFIX_NEVER,
                            .byte_fallback = m.byte_fallback};
    int rc = tn_bpe_init(bpe, pieces, special, m.n_pieces, &options, source, err);
    if (rc == 0) {
        bpe->unk_id = unk_id;
        for (int b = 0; m.byte_fallback && b < 256 && rc == 0; b++)
            if (bpe->byte_ids[b] < 0 || m.pieces[bpe->byte_ids[b]].type != PIECE_BYTE) {
                rc = tn_fail(err, "%s: byte_fallback needs a piece <0x%02X> of type BYTE", source, b);
                tn_bpe_free(bpe);
            }
    }
    if (rc == 0) {
        int n_merges;
        int32_t *ranks;
        TnMerge *merges = build_merges(bpe, &m, &ranks, &n_merges);
        rc = tn_bpe_set_merges(bpe, merges, ranks, n_merges, source, err);
        free(ranks);
    }
    free(m.pieces);
    return rc;
}

int tn_sentencepiece_read(TnBpe *bpe, const char *path, TnError *err) {
    char *data;
    size_t size;
    memset(bpe, 0, sizeof *bpe);
    if (tn_read_file(path, &data, &size, err)) return -1;
    int rc = tn_sentencepiece_parse(bpe, data, size, path, err);
    free(data);
    return rc;
}
