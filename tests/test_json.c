/* test_json: tn_json_parse_whole (util/json.h), the one "a JSON value, then
 * only the format's blanks" of the safetensors header, tokenizer.json and
 * JSON Lines, and those three callers' answers through it.
 *
 * The offset it gives: the end of the text when only blanks follow, else
 * the first other byte (a blank of another format, a NUL, a second value),
 * and where the parse failed for text that is no JSON. The callers: a
 * JSON Lines line with a tab after the object parses, one with a second
 * object is "bytes after the JSON object" and one that is an array with
 * trailing bytes still "not a JSON object"; a tokenizer.json with a byte
 * after the value names its offset; a safetensors header padded with
 * spaces loads and one with a tab after the JSON does not.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "data/jsonl.h"
#include "model/safetensors.h"
#include "test.h"
#include "tokenizer/bpe.h"
#include "tokenizer/hf_json.h"
#include "util/fileio.h"
#include "util/json.h"

/* The offset tn_json_parse_whole gives for the n bytes at text (SIZE_MAX
 * when it finds no value), the value deleted. */
static size_t whole_at(const char *text, size_t n, const char *blanks) {
    size_t at = 0;
    cJSON *root = tn_json_parse_whole(text, n, blanks, &at);
    cJSON_Delete(root);
    return root ? at : SIZE_MAX;
}

static void check_helper(void) {
    CHECK(whole_at("{\"a\": 1}", 8, " ") == 8, "a whole value: at the end");
    CHECK(whole_at("{\"a\": 1}   ", 11, " ") == 11, "trailing blanks: at the end");
    CHECK(whole_at("{\"a\": 1} \t", 10, " ") == 9, "a tab where only spaces may follow: at the tab");
    CHECK(whole_at("{\"a\": 1} \t\r\n", 12, " \t\r\n") == 12, "the four blanks allowed: at the end");
    CHECK(whole_at("[1] [2]", 7, " ") == 4, "a second value: at it");
    CHECK(whole_at("[1] \0 ", 6, " ") == 4, "a NUL is never blank");
    CHECK(whole_at("[1]  x", 4, " ") == 4, "only the n bytes given are read");
    CHECK(whole_at("7\x01", 2, " \t\r\n") == 1, "a control byte after a value is not blank");
    size_t at = 0;
    cJSON *none = tn_json_parse_whole("[1, }", 5, " ", &at);
    CHECK(!none && at == 4, "no value: NULL, at where the parse failed (4, got %zu)", at);
    cJSON_Delete(none);
    CHECK(whole_at("", 0, " ") == SIZE_MAX, "an empty text holds no value");
}

static void check_jsonl(void) {
    static const struct {
        const char *line, *reason; /* reason NULL: parses */
    } cases[] = {
        {"{\"text\": \"a\"} \t\r", NULL},
        {"{\"text\": \"a\"} {}", "bytes after the JSON object"},
        {"{\"text\": \"a\"}\n", "bytes after the JSON object"},
        {"[1] x", "not a JSON object"},
        {"{\"text\": ", "malformed JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *json = NULL;
        const char *reason = NULL;
        int rc = tn_json_object_parse(cases[i].line, strlen(cases[i].line), &json, &reason);
        if (!cases[i].reason)
            CHECK(rc == 0 && json, "line %zu parses: %s", i, rc ? reason : "");
        else
            CHECK(rc == -1 && !json && strcmp(reason, cases[i].reason) == 0, "line %zu: \"%s\", expected \"%s\"", i,
                  rc ? reason : "(parsed)", cases[i].reason);
        cJSON_Delete(json);
    }
}

static void check_hf_json(const char *dir) {
    char path[4200];
    TnError err;
    TnBpe bpe;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    static const char text[] = "{\"model\": {}}\n \t x";
    CHECK(tn_write_file(path, text, strlen(text), &err) == 0, "%s", err.msg);
    CHECK(tn_hf_json_read(&bpe, path, &err) == -1 && strstr(err.msg, "bytes after the JSON value (at byte 17)"),
          "tokenizer.json with a byte after the value: %s", err.msg);
    CHECK(tn_write_file(path, "{\"model\": ", 10, &err) == 0, "%s", err.msg);
    CHECK(tn_hf_json_read(&bpe, path, &err) == -1 && strstr(err.msg, "not valid JSON (at byte"),
          "tokenizer.json cut short: %s", err.msg);
}

/* A safetensors file of no tensors whose header is json then padding. */
static int write_safetensors(const char *path, const char *json, const char *padding) {
    char file[256];
    size_t n = strlen(json) + strlen(padding);
    for (int i = 0; i < 8; i++) file[i] = (char)(((uint64_t)n >> (8 * i)) & 0xff);
    snprintf(file + 8, sizeof file - 8, "%s%s", json, padding);
    TnError err;
    return tn_write_file(path, file, 8 + n, &err);
}

static void check_safetensors(const char *dir) {
    char path[4200];
    TnError err;
    TnStFile f;
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    CHECK(write_safetensors(path, "{\"__metadata__\": {}}", "    ") == 0, "writing %s", path);
    int rc = tn_st_open(&f, path, &err);
    CHECK(rc == 0, "a header padded with spaces loads: %s", err.msg);
    if (rc == 0) tn_st_close(&f);
    CHECK(write_safetensors(path, "{\"__metadata__\": {}}", "  \t ") == 0, "writing %s", path);
    rc = tn_st_open(&f, path, &err);
    CHECK(rc == -1 && strstr(err.msg, "header is not a valid JSON object"), "a tab after the header's JSON: %s",
          rc ? err.msg : "(loaded)");
    if (rc == 0) tn_st_close(&f);
}

int main(int argc, char **argv) {
    (void)argc;
    char dir[4096];
    make_temp_dir(dir, sizeof dir, "json");
    check_helper();
    check_jsonl();
    check_hf_json(dir);
    check_safetensors(dir);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
