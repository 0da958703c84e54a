#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/bpe.h"
#include "tokenizer/hf_json.h"
#include "tokenizer/sentencepiece.h"
#include "util/fileio.h"

/* bpe.vocab_size == 0 marks the byte-level tokenizer. */
struct TnTokenizer {
    int vocab_size;
    TnBpe bpe;
};

struct TnEncoder {
    const TnTokenizer *tok;
    TnBpeEncoder *bpe; /* NULL for the byte-level tokenizer */
    int32_t *ids;      /* byte-level output */
    size_t capacity;
};

static TnTokenizer byte_tokenizer = {TN_BYTE_VOCAB_SIZE, {0}};
static const char byte_names[TN_BYTE_VOCAB_SIZE][7] = {
#define NAME4(n) "<0x" #n "0>", "<0x" #n "1>", "<0x" #n "2>", "<0x" #n "3>"
#define NAME16(n) NAME4(n), "<0x" #n "4>", "<0x" #n "5>", "<0x" #n "6>", "<0x" #n "7>", "<0x" #n "8>", \
    "<0x" #n "9>", "<0x" #n "A>", "<0x" #n "B>", "<0x" #n "C>", "<0x" #n "D>", "<0x" #n "E>", "<0x" #n "F>"
    "<unk>", "<s>", "</s>", NAME16(0), NAME16(1), NAME16(2), NAME16(3), NAME16(4), NAME16(5), NAME16(6), NAME16(7),
    NAME16(8), NAME16(9), NAME16(A), NAME16(B), NAME16(C), NAME16(D), NAME16(E), NAME16(F),
#undef NAME16
#undef NAME4
};

/* Every byte value in order: the byte-level tokenizer's token bytes. */
static const unsigned char all_bytes[256] = {
#define BYTES4(n) n, n + 1, n + 2, n + 3
#define BYTES16(n) BYTES4(n), BYTES4(n + 4), BYTES4(n + 8), BYTES4(n + 12)
#define BYTES64(n) BYTES16(n), BYTES16(n + 16), BYTES16(n + 32), BYTES16(n + 48)
    BYTES64(0), BYTES64(64), BYTES64(128), BYTES64(192),
#undef BYTES64
#undef BYTES16
#undef BYTES4
};

static int is_bpe(const TnTokenizer *tok) { return tok->bpe.vocab_size > 0; }

TnTokenizer *tn_tokenizer_bytes(void) { return &byte_tokenizer; }

TnTokenizer *tn_tokenizer_from_bpe(TnBpe *bpe) {
    TnTokenizer *tok = tn_calloc(1, sizeof *tok);
    tok->bpe = *bpe;
    tok->vocab_size = bpe->vocab_size;
    memset(bpe, 0, sizeof *bpe);
    return tok;
}

const TnBpe *tn_tokenizer_bpe(const TnTokenizer *tok) { return is_bpe(tok) ? &tok->bpe : NULL; }

/* By the name: a tokenizer.json may start with any byte a ModelProto may,
 * a newline included. */
int tn_tokenizer_is_sentencepiece(const char *path) { return tn_path_ends_with(path, ".model"); }

int tn_tokenizer_load(TnTokenizer **tok, const char *path, TnError *err) {
    TnBpe bpe;
    *tok = NULL;
    if (tn_tokenizer_is_sentencepiece(path) ? tn_sentencepiece_read(&bpe, path, err) : tn_hf_json_read(&bpe, path, err))
        return -1;
    *tok = tn_tokenizer_from_bpe(&bpe);
    return 0;
}

int tn_tokenizer_path_in(const char *dir, char *path, size_t cap, TnError *err) {
    static const char *const names[2] = {"tokenizer.json", "tokenizer.model"};
    for (int i = 0; i < 2; i++) {
        if (tn_path_join(path, cap, dir, names[i], err)) return -1;
        if (tn_file_exists(path)) return 0;
    }
    path[0] = '\0';
    return 0;
}

int tn_tokenizer_for_model(TnTokenizer **tok, const char *model, TnError *err) {
    struct stat st;
    /* a mistyped path must not quietly tokenize a corpus into bytes */
    if (stat(model, &st) != 0) return tn_fail(err, "%s: %s", model, strerror(errno));
    if (S_ISREG(st.st_mode)) return tn_tokenizer_load(tok, model, err);
    char path[4096];
    if (tn_tokenizer_path_in(model, path, sizeof path, err)) return -1;
    if (path[0]) return tn_tokenizer_load(tok, path, err);
    *tok = tn_tokenizer_bytes();
    return 0;
}

int tn_tokenizer_save(const TnTokenizer *tok, const char *path, TnError *err) {
    if (!is_bpe(tok)) return tn_fail(err, "%s: the byte-level tokenizer has no tokenizer.json", path);
    return tn_hf_json_write(&tok->bpe, path, err);
}

void tn_tokenizer_free(TnTokenizer *tok) {
    if (!tok || tok == &byte_tokenizer) return;
    tn_bpe_free(&tok->bpe);
    free(tok);
}

int tn_tokenizer_vocab_size(const TnTokenizer *tok) { return tok->vocab_size; }

TnEncoder *tn_encoder_new(const TnTokenizer *tok) {
    TnEncoder *enc = tn_calloc(1, sizeof *enc);
    enc->tok = tok;
    if (is_bpe(tok)) enc->bpe = tn_bpe_encoder_new(&tok->bpe);
    return enc;
}

void tn_encoder_free(TnEncoder *enc) {
    if (!enc) return;
    tn_bpe_encoder_free(enc->bpe);
    free(enc->ids);
    free(enc);
}

const int32_t *tn_encoder_encode(TnEncoder *enc, const char *text, size_t len, size_t *n_ids) {
    if (enc->bpe) return tn_bpe_encode(enc->bpe, text, len, n_ids);
    if (len > enc->capacity) {
        free(enc->ids);
        enc->capacity = len;
        enc->ids = tn_malloc(len * sizeof *enc->ids);
    }
    for (size_t i = 0; i < len; i++) enc->ids[i] = (int32_t)(unsigned char)text[i] + 3;
    *n_ids = len;
    return enc->ids;
}

int tn_tokenizer_encode(const TnTokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids,
                        TnError *err) {
    (void)err;
    TnEncoder *enc = tn_encoder_new(tok);
    const int32_t *encoded = tn_encoder_encode(enc, text, len, n_ids);
    *ids = tn_malloc((*n_ids ? *n_ids : 1) * sizeof **ids);
    if (*n_ids) memcpy(*ids, encoded, *n_ids * sizeof **ids);
    tn_encoder_free(enc);
    return 0;
}

const char *tn_tokenizer_piece(const TnTokenizer *tok, int32_t id) {
    if (id < 0 || id >= tok->vocab_size) return NULL;
    return is_bpe(tok) ? tok->bpe.pieces[id] : byte_names[id];
}

const char *tn_tokenizer_token_bytes(const TnTokenizer *tok, int32_t id, size_t *len) {
    *len = 0;
    if (id < 0 || id >= tok->vocab_size) return "";
    if (!is_bpe(tok)) {
        if (id < 3) return "";
        *len = 1;
        return (const char *)all_bytes + (id - 3);
    }
    *len = tok->bpe.decoded_offset[id + 1] - tok->bpe.decoded_offset[id];
    return tok->bpe.decoded + tok->bpe.decoded_offset[id];
}

char *tn_tokenizer_decode(const TnTokenizer *tok, const int32_t *ids, size_t n_ids, size_t *len) {
    size_t total = 0, n = 0, piece_len;
    for (size_t i = 0; i < n_ids; i++) {
        tn_tokenizer_token_bytes(tok, ids[i], &piece_len);
        total += piece_len;
    }
    char *out = tn_malloc(total + 1);
    for (size_t i = 0; i < n_ids; i++) {
        const char *piece = tn_tokenizer_token_bytes(tok, ids[i], &piece_len);
        memcpy(out + n, piece, piece_len);
        n += piece_len;
    }
    if (is_bpe(tok) && tok->bpe.options.add_prefix != TN_PREFIX_NEVER && n > 0 && out[0] == ' ')
        memmove(out, out + 1, --n);
    out[n] = '\0';
    if (len) *len = n;
    return out;
}
