#include "data/text_batches.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/jsonl.h"
#include "util/fileio.h"

static int is_jsonl_name(const char *path) {
    static const char *const endings[] = {".jsonl", ".ndjson", ".json"};
    for (int i = 0; i < 3; i++)
        if (tn_path_ends_with(path, endings[i])) return 1;
    return 0;
}

int tn_text_batches_open(TnTextBatches *r, const char *const *paths, int n_paths, TnError *err) {
    memset(r, 0, sizeof *r);
    r->paths = paths;
    r->n_paths = n_paths;
    r->current = -1;
    for (int i = 0; i < n_paths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) return tn_fail(err, "%s: %s", paths[i], strerror(errno));
        if (S_ISDIR(st.st_mode)) return tn_fail(err, "%s: is a directory, not a text or JSONL file", paths[i]);
        r->total_bytes += (uint64_t)st.st_size;
    }
    return 0;
}

void tn_text_batches_close(TnTextBatches *r) {
    if (r->file) fclose(r->file);
    free(r->raw);
    free(r->decoded);
    free(r->offset);
    free(r->text);
    free(r->length);
    memset(r, 0, sizeof *r);
}

/* Opens the next file when the current one is used up; 0 at the end. */
static int advance_file(TnTextBatches *r, TnError *err) {
    while (r->raw_start == r->raw_end && (r->at_eof || !r->file)) {
        if (r->file) fclose(r->file);
        r->file = NULL;
        if (++r->current >= r->n_paths) return 0;
        r->file = fopen(r->paths[r->current], "rb");
        if (!r->file) return tn_fail(err, "%s: %s", r->paths[r->current], strerror(errno));
        r->jsonl = is_jsonl_name(r->paths[r->current]);
        r->at_eof = 0;
        r->line_number = 0;
        r->raw_start = r->raw_end = 0;
    }
    return 1;
}

/* Reads more of the current file so that raw holds at least want bytes. */
static int fill(TnTextBatches *r, size_t want, TnError *err) {
    if (r->raw_start > 0) {
        memmove(r->raw, r->raw + r->raw_start, r->raw_end - r->raw_start);
        r->raw_end -= r->raw_start;
        r->raw_start = 0;
    }
    if (want > r->raw_capacity) {
        char *grown = tn_malloc(want);
        if (r->raw_end) memcpy(grown, r->raw, r->raw_end);
        free(r->raw);
        r->raw = grown;
        r->raw_capacity = want;
    }
    while (!r->at_eof && r->raw_end < want) {
        size_t got = fread(r->raw + r->raw_end, 1, want - r->raw_end, r->file);
        r->raw_end += got;
        r->bytes_read += got;
        if (got == 0) {
            if (ferror(r->file)) return tn_fail(err, "%s: read error", r->paths[r->current]);
            r->at_eof = 1;
        }
    }
    return 0;
}

static void add_document(TnTextBatches *r, int *count, size_t offset, size_t length) {
    if (*count == r->document_capacity) {
        int cap = r->document_capacity ? 2 * r->document_capacity : 1024;
        r->offset = realloc(r->offset, (size_t)cap * sizeof *r->offset);
        r->text = realloc(r->text, (size_t)cap * sizeof *r->text);
        r->length = realloc(r->length, (size_t)cap * sizeof *r->length);
        if (!r->offset || !r->text || !r->length) tn_die("out of memory for a batch of %d documents", cap);
        r->document_capacity = cap;
    }
    r->offset[*count] = offset;
    r->length[(*count)++] = length;
}

static int add_json_line(TnTextBatches *r, int *count, const char *line, size_t len, TnError *err) {
    if (tn_line_is_blank(line, len)) return 0;
    cJSON *json, *text;
    const char *reason;
    if (tn_doc_parse(line, len, &json, &text, &reason))
        return tn_fail(err, "%s:%lld: %s", r->paths[r->current], r->line_number, reason);
    size_t n = strlen(text->valuestring);
    if (r->decoded_size + n > r->decoded_capacity) {
        r->decoded_capacity = 2 * (r->decoded_size + n) + 4096;
        r->decoded = realloc(r->decoded, r->decoded_capacity);
        if (!r->decoded) tn_die("out of memory for decoded JSON text");
    }
    memcpy(r->decoded + r->decoded_size, text->valuestring, n);
    add_document(r, count, r->decoded_size, n);
    r->decoded_size += n;
    cJSON_Delete(json);
    return 0;
}

/* The end of the last whole unit in raw: after the last '\n' for JSONL,
 * after the last blank line for plain text; 0 if none. */
static size_t last_cut(const TnTextBatches *r) {
    const char *base = r->raw + r->raw_start;
    size_t n = r->raw_end - r->raw_start;
    for (size_t i = n; i > 0; i--)
        if (base[i - 1] == '\n' && (r->jsonl || (i >= 2 && base[i - 2] == '\n'))) return i;
    return 0;
}

static void add_plain_documents(TnTextBatches *r, int *count, size_t start, size_t end) {
    size_t doc = start;
    for (size_t i = start; i <= end; i++) {
        int separator = i + 1 < end && r->raw[i] == '\n' && r->raw[i + 1] == '\n';
        if (!separator && i < end) continue;
        if (i > doc) add_document(r, count, doc, i - doc);
        while (i + 1 < end && r->raw[i + 1] == '\n') i++;
        doc = i + 1;
    }
}

int tn_text_batches_next(TnTextBatches *r, TnTextBatch *b, size_t max_bytes, TnError *err) {
    int count = 0;
    r->decoded_size = 0;
    memset(b, 0, sizeof *b);
    int more = advance_file(r, err);
    if (more <= 0) return more;
    if (fill(r, max_bytes, err)) return -1;
    size_t cut = last_cut(r);
    /* No whole unit in a full buffer: read on (a JSON line is never cut;
     * a plain document is, after four batches, at its last line break). */
    for (size_t want = 2 * max_bytes; cut == 0 && !r->at_eof && (r->jsonl || want <= 4 * max_bytes); want *= 2) {
        if (fill(r, want, err)) return -1;
        cut = last_cut(r);
    }
    if (cut == 0 && !r->at_eof) {
        const char *nl = memrchr(r->raw + r->raw_start, '\n', r->raw_end - r->raw_start);
        cut = nl ? (size_t)(nl - (r->raw + r->raw_start)) + 1 : r->raw_end - r->raw_start;
    }
    if (r->at_eof) cut = r->raw_end - r->raw_start;
    size_t start = r->raw_start, end = start + cut;
    if (r->jsonl) {
        for (size_t line = start; line < end;) {
            const char *nl = memchr(r->raw + line, '\n', end - line);
            size_t stop = nl ? (size_t)(nl - r->raw) : end;
            r->line_number++;
            if (add_json_line(r, &count, r->raw + line, stop - line, err)) return -1;
            line = stop + 1;
        }
    } else {
        add_plain_documents(r, &count, start, end);
    }
    r->raw_start += cut;
    for (int i = 0; i < count; i++)
        r->text[i] = (r->jsonl ? r->decoded : r->raw) + r->offset[i];
    b->count = count;
    b->text = r->text;
    b->length = r->length;
    b->bytes = cut;
    return count ? count : tn_text_batches_next(r, b, max_bytes, err);
}
