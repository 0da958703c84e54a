#include "data/jsonl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "util/json.h"

int tn_jsonl_open(TnJsonlReader *c, const char *const *paths, int n_paths, TnError *err) {
    memset(c, 0, sizeof *c);
    c->paths = paths;
    c->n_paths = n_paths;
    for (int i = 0; i < n_paths; i++) {
        struct stat st;
        if (strcmp(paths[i], "-") == 0) { c->total_bytes = 0; break; }
        if (stat(paths[i], &st) != 0) return tn_fail(err, "%s: cannot open: %s", paths[i], strerror(errno));
        if (S_ISDIR(st.st_mode)) return tn_fail(err, "%s: is a directory, not a JSONL file", paths[i]);
        c->total_bytes += (uint64_t)st.st_size;
    }
    return 0;
}

void tn_jsonl_close(TnJsonlReader *c) {
    if (c->open) tn_line_reader_close(&c->reader);
    c->open = 0;
}

uint64_t tn_jsonl_bytes_read(const TnJsonlReader *c) {
    return c->finished_bytes + (c->open ? c->reader.compressed_bytes : 0);
}

void tn_doc_batch_init(TnDocBatch *b, int capacity) {
    memset(b, 0, sizeof *b);
    b->capacity = capacity;
    b->lines = tn_calloc((size_t)capacity, sizeof *b->lines);
    b->index = tn_calloc((size_t)capacity, sizeof *b->index);
    b->file = tn_calloc((size_t)capacity, sizeof *b->file);
    b->line_number = tn_calloc((size_t)capacity, sizeof *b->line_number);
}

void tn_doc_batch_free(TnDocBatch *b) {
    for (int i = 0; i < b->capacity; i++) tn_textbuf_free(&b->lines[i]);
    free(b->lines);
    free(b->index);
    free(b->file);
    free(b->line_number);
    memset(b, 0, sizeof *b);
}

int tn_line_is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

int tn_jsonl_read_batch(TnJsonlReader *c, TnDocBatch *b, size_t max_bytes, TnError *err) {
    b->count = 0;
    b->bytes = 0;
    while (b->count < b->capacity && b->bytes < max_bytes && c->current < c->n_paths) {
        if (!c->open) {
            if (tn_line_reader_open(&c->reader, c->paths[c->current], err)) return -1;
            c->open = 1;
        }
        char *line;
        size_t len;
        int rc = tn_line_reader_next(&c->reader, &line, &len, err);
        if (rc < 0) return -1;
        if (rc == 0) {
            c->finished_bytes += c->reader.compressed_bytes;
            tn_jsonl_close(c);
            c->current++;
            continue;
        }
        if (tn_line_is_blank(line, len)) continue;
        int i = b->count++;
        tn_textbuf_clear(&b->lines[i]);
        tn_textbuf_append(&b->lines[i], line, len);
        b->index[i] = c->n_documents++;
        b->file[i] = c->current;
        b->line_number[i] = c->reader.line_number;
        b->bytes += len;
    }
    return b->count;
}

static int valid_utf8(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

int tn_json_object_parse(const char *line, size_t len, cJSON **json, const char **reason) {
    *json = NULL;
    /* cJSON ends a string at a NUL, escaped or not: refuse rather than cut the text. */
    if (memchr(line, '\0', len)) { *reason = "NUL byte in the line"; return -1; }
    if (memmem(line, len, "\\u0000", 6)) { *reason = "\\u0000 (NUL) in the line"; return -1; }
    size_t at;
    *json = tn_json_parse_whole(line, len, " \t\r", &at); /* tn_line_is_blank's blanks */
    if (!*json) { *reason = "malformed JSON"; return -1; }
    if (!cJSON_IsObject(*json)) *reason = "not a JSON object";
    else if (at != len) *reason = "bytes after the JSON object";
    else return 0;
    cJSON_Delete(*json);
    *json = NULL;
    return -1;
}

int tn_doc_parse(const char *line, size_t len, cJSON **json, cJSON **text, const char **reason) {
    *text = NULL;
    if (tn_json_object_parse(line, len, json, reason)) return -1;
    *text = cJSON_GetObjectItemCaseSensitive(*json, "text");
    if (cJSON_IsString(*text)) return 0;
    *reason = "no string field \"text\"";
    cJSON_Delete(*json);
    *json = NULL;
    *text = NULL;
    return -1;
}

void tn_json_append_string(TnTextBuf *out, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    tn_textbuf_reserve(out, out->len + n + 2);
    tn_textbuf_append(out, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\'; esc[1] = (char)ch;
            tn_textbuf_append(out, esc, 2);
            i++;
        } else if (ch == '\n' || ch == '\t' || ch == '\r') {
            esc[0] = '\\'; esc[1] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
            tn_textbuf_append(out, esc, 2);
            i++;
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            tn_textbuf_append(out, esc, 6);
            i++;
        } else if (ch < 0x80) {
            tn_textbuf_append(out, (const char *)&s[i], 1);
            i++;
        } else {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (k > 0) {
                tn_textbuf_append(out, s + i, (size_t)k);
                i += (size_t)k;
            } else {
                char latin1[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
                tn_textbuf_append(out, latin1, 6);
                i++;
            }
        }
    }
    tn_textbuf_append(out, "\"", 1);
}

void tn_reject_append(TnTextBuf *out, const char *reason, const char *detail, const char *file,
                      long long line_number, const char *line, size_t len, int doc_is_json) {
    char number[32];
    tn_textbuf_append_str(out, "{\"reason\":");
    tn_json_append_string(out, reason, strlen(reason));
    if (detail) {
        tn_textbuf_append_str(out, ",\"detail\":");
        tn_json_append_string(out, detail, strlen(detail));
    }
    tn_textbuf_append_str(out, ",\"file\":");
    tn_json_append_string(out, file, strlen(file));
    snprintf(number, sizeof number, ",\"line\":%lld,", line_number);
    tn_textbuf_append_str(out, number);
    if (doc_is_json && valid_utf8(line, len)) { /* else escaped below, to stay valid JSON */
        tn_textbuf_append_str(out, "\"doc\":");
        tn_textbuf_append(out, line, len);
    } else {
        tn_textbuf_append_str(out, "\"raw\":");
        tn_json_append_string(out, line, len);
    }
    tn_textbuf_append_str(out, "}\n");
}

int tn_doc_open(const TnJsonlReader *corpus, const TnDocBatch *b, int i, cJSON **json, cJSON **text,
                TnTextBuf *rejected) {
    const char *reason;
    const TnTextBuf *line = &b->lines[i];
    if (tn_doc_parse(line->data, line->len, json, text, &reason) == 0) return 0;
    tn_reject_append(rejected, reason, NULL, corpus->paths[b->file[i]], b->line_number[i], line->data, line->len, 0);
    return -1;
}

void tn_doc_reject(const TnJsonlReader *corpus, const TnDocBatch *b, int i, const char *reason, const char *detail,
                   TnTextBuf *rejected) {
    tn_reject_append(rejected, reason, detail, corpus->paths[b->file[i]], b->line_number[i], b->lines[i].data,
                     b->lines[i].len, 1);
}

void tn_doc_append_json(TnTextBuf *out, const cJSON *json) {
    char *printed = cJSON_PrintUnformatted(json);
    TN_ASSERT(printed);
    tn_textbuf_append_str(out, printed);
    tn_textbuf_append(out, "\n", 1);
    cJSON_free(printed);
}

void tn_doc_append_line(TnTextBuf *out, const TnDocBatch *b, int i) {
    tn_textbuf_append(out, b->lines[i].data, b->lines[i].len);
    tn_textbuf_append(out, "\n", 1);
}
