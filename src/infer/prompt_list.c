#include "infer/prompt_list.h"

#include <stdlib.h>
#include <string.h>

#include "data/jsonl.h"
#include "util/fileio.h"

/* The prompt of a JSON line: its "prompt" string, else its "text". */
static int json_prompt(const char *path, int line_number, const char *line, size_t len, const char **text,
                       size_t *text_len, cJSON **json, TnError *err) {
    const char *reason;
    if (tn_json_object_parse(line, len, json, &reason))
        return tn_fail(err, "%s:%d: %s (a JSON Lines file: its first line starts with '{')", path, line_number,
                       reason);
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(*json, "prompt");
    if (!field) field = cJSON_GetObjectItemCaseSensitive(*json, "text");
    if (!cJSON_IsString(field))
        return tn_fail(err, "%s:%d: no string field \"prompt\" or \"text\"", path, line_number);
    *text = field->valuestring;
    *text_len = strlen(field->valuestring);
    return 0;
}

int tn_prompt_list_read(TnPromptList *list, const char *path, TnError *err) {
    memset(list, 0, sizeof *list);
    char *data;
    size_t size;
    if (tn_read_file(path, &data, &size, err)) return -1;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    list->text = tn_malloc(lines * sizeof *list->text);
    list->length = tn_malloc(lines * sizeof *list->length);
    list->line = tn_malloc(lines * sizeof *list->line);
    list->storage = tn_malloc(size + lines); /* a prompt is never longer than its line, plus a NUL each */
    size_t used = 0;
    int jsonl = -1, line_number = 0, rc = 0;
    for (size_t start = 0; start < size && rc == 0;) {
        const char *line = data + start, *newline = memchr(line, '\n', size - start);
        size_t len = newline ? (size_t)(newline - line) : size - start;
        start += len + 1;
        line_number++;
        if (len && line[len - 1] == '\r') len--;
        if (len == 0) continue;
        if (jsonl < 0) jsonl = line[0] == '{';
        const char *text = line;
        size_t text_len = len;
        cJSON *json = NULL;
        if (jsonl) rc = json_prompt(path, line_number, line, len, &text, &text_len, &json, err);
        if (rc == 0) {
            char *out = list->storage + used;
            memcpy(out, text, text_len);
            out[text_len] = '\0';
            list->text[list->count] = out; /* storage is not moved again, so pointers stay valid */
            list->length[list->count] = text_len;
            list->line[list->count++] = line_number;
            used += text_len + 1;
        }
        cJSON_Delete(json);
    }
    free(data);
    if (rc == 0 && list->count == 0) rc = tn_fail(err, "%s: no prompts (empty lines are skipped)", path);
    if (rc) tn_prompt_list_free(list);
    return rc;
}

void tn_prompt_list_free(TnPromptList *list) {
    free(list->text);
    free(list->length);
    free(list->line);
    free(list->storage);
    memset(list, 0, sizeof *list);
}
