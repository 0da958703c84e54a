#include "data/corpus.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonl.h"
#include "data/shard.h"
#include "data/stream.h"
#include "data/textbuf.h"
#include "util/fileio.h"

int tn_corpus_is_jsonl(const char *path) {
    return tn_path_ends_with(path, ".jsonl") || tn_path_ends_with(path, ".jsonl.gz") ||
           tn_path_ends_with(path, ".jsonl.zst");
}

/* The whole file at path (NUL-terminated, *size without the NUL),
 * decompressed where its name says so (stream.h): each line ended by '\n'. */
static int read_decompressed(const char *path, char **data, size_t *size, TnError *err) {
    if (tn_codec_for_path(path) == TN_CODEC_PLAIN) return tn_read_file(path, data, size, err);
    TnLineReader r;
    if (tn_line_reader_open(&r, path, err)) return -1;
    TnTextBuf text = {0};
    tn_textbuf_clear(&text); /* NUL-terminated even when empty */
    char *line;
    size_t len;
    int rc;
    while ((rc = tn_line_reader_next(&r, &line, &len, err)) == 1) {
        tn_textbuf_append(&text, line, len);
        tn_textbuf_append(&text, "\n", 1);
    }
    tn_line_reader_close(&r);
    if (rc < 0) {
        tn_textbuf_free(&text);
        return -1;
    }
    *data = text.data;
    *size = text.len;
    return 0;
}

/* A growing array of token ids. */
typedef struct TokenList {
    uint32_t *ids;
    size_t n, cap;
} TokenList;

static void list_reserve(TokenList *l, size_t more) {
    if (l->n + more <= l->cap) return;
    size_t cap = l->cap ? l->cap : 4096;
    while (cap < l->n + more) cap *= 2;
    uint32_t *ids = tn_malloc(cap * sizeof *ids);
    if (l->n) memcpy(ids, l->ids, l->n * sizeof *ids);
    free(l->ids);
    l->ids = ids;
    l->cap = cap;
}

static int append_document(TokenList *l, const TnTokenizer *tok, const char *text, size_t len, TnError *err) {
    int32_t *ids;
    size_t n;
    if (tn_tokenizer_encode(tok, text, len, &ids, &n, err)) return -1;
    list_reserve(l, n + 1);
    for (size_t i = 0; i < n; i++) l->ids[l->n++] = (uint32_t)ids[i];
    l->ids[l->n++] = TN_TOKEN_EOS;
    free(ids);
    return 0;
}

/* Line by line over all size bytes (a NUL byte is an error of its line, not
 * the end of the file), each parsed as the data commands parse it. */
static int read_jsonl(TokenList *l, const TnTokenizer *tok, const char *path, const char *data, size_t size,
                      TnError *err) {
    long long line_number = 0;
    for (size_t start = 0; start < size;) {
        const char *line = data + start, *newline = memchr(line, '\n', size - start);
        size_t len = newline ? (size_t)(newline - line) : size - start;
        start += len + 1;
        line_number++;
        if (tn_line_is_blank(line, len)) continue;
        cJSON *doc, *text;
        const char *reason;
        if (tn_doc_parse(line, len, &doc, &text, &reason))
            return tn_fail(err, "%s line %lld: %s", path, line_number, reason);
        int rc = append_document(l, tok, text->valuestring, strlen(text->valuestring), err);
        cJSON_Delete(doc);
        if (rc) return -1;
    }
    return 0;
}

/* Whether path is read as a shard: by its name, or by its first four bytes,
 * the magic (read alone: a shard is mapped, never read whole). A file that
 * cannot be read is not one; tn_read_file then names the problem. */
static int is_shard(const char *path) {
    if (tn_path_ends_with(path, ".bin")) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int32_t magic = 0;
    int read = fread(&magic, sizeof magic, 1, f) == 1;
    fclose(f);
    return read && magic == TN_SHARD_MAGIC;
}

static int read_one(TokenList *l, const TnTokenizer *tok, const char *path, TnError *err) {
    if (is_shard(path)) {
        TnShard shard;
        if (tn_shard_open(&shard, path, err)) return -1;
        if (shard.n_tokens) { /* an empty shard has nothing to copy (and l->ids may be NULL) */
            list_reserve(l, shard.n_tokens);
            memcpy(l->ids + l->n, shard.tokens, shard.n_tokens * sizeof *l->ids);
            l->n += shard.n_tokens;
        }
        tn_shard_close(&shard);
        return 0;
    }
    char *data;
    size_t size;
    if (read_decompressed(path, &data, &size, err)) return -1;
    int rc;
    if (tn_corpus_is_jsonl(path)) rc = read_jsonl(l, tok, path, data, size, err);
    else rc = size ? append_document(l, tok, data, size, err) : 0;
    free(data);
    return rc;
}

int tn_corpus_read(const char *paths, const TnTokenizer *tok, int vocab_size, uint32_t **tokens, size_t *n_tokens,
                   TnError *err) {
    TokenList l = {0};
    char path[4096];
    for (const char *p = paths; *p;) {
        size_t len = strcspn(p, ",");
        if (len >= sizeof path) { free(l.ids); return tn_fail(err, "data path too long: %.64s...", p); }
        memcpy(path, p, len);
        path[len] = '\0';
        size_t before = l.n;
        if (len && read_one(&l, tok, path, err)) { free(l.ids); return -1; }
        for (size_t i = before; i < l.n; i++)
            if (l.ids[i] >= (uint32_t)vocab_size) {
                uint32_t id = l.ids[i];
                free(l.ids);
                return tn_fail(err, "%s: token %zu has id %u, outside the model's vocabulary of %d", path, i - before,
                               id, vocab_size);
            }
        if (len && l.n == before) { free(l.ids); return tn_fail(err, "%s: no tokens (empty file?)", path); }
        p += len + (p[len] == ',');
    }
    if (!l.n) return tn_fail(err, "no data files given in '%s'", paths);
    *tokens = l.ids;
    *n_tokens = l.n;
    return 0;
}

double tn_unigram_loss(const uint32_t *train, size_t n_train, const uint32_t *eval, size_t n_eval, int vocab_size) {
    double *count = tn_malloc((size_t)vocab_size * sizeof *count), total = (double)n_train + vocab_size, sum = 0.0;
    for (int i = 0; i < vocab_size; i++) count[i] = 1.0;
    for (size_t i = 0; i < n_train; i++) count[train[i]] += 1.0;
    for (size_t i = 0; i < n_eval; i++) sum -= log(count[eval[i]] / total);
    free(count);
    return n_eval ? sum / (double)n_eval : 0.0;
}
