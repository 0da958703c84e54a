/* Compressed line streams, the JSONL corpus reader and the document
 * pipeline: round trips through plain, gzip and zstd (long lines, a last
 * line without '\n', concatenated gzip members), truncated and corrupt
 * input reported with the file name, aborted writers leaving no file, and
 * pipeline output identical for 1 and 2 threads with every document kept
 * or rejected. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/pipeline.h"
#include "test.h"
#include "util/rng.h"

#define N_LINES 300

static char *lines[N_LINES];
static size_t lengths[N_LINES];

static void make_lines(uint64_t seed) {
    static const char *pieces[] = {"hello ", "世界", "\\\"q\\\" ", "数据清洗", "x", "\t", "éß "};
    TnRng rng;
    tn_rng_seed(&rng, seed, 0);
    for (int i = 0; i < N_LINES; i++) {
        /* Mostly short, some far longer than the reader's 256 KiB chunk. */
        size_t words = i % 97 == 5 ? 120000 : (size_t)tn_rng_below(&rng, 60);
        TnTextBuf b = {0};
        tn_textbuf_clear(&b);
        for (size_t w = 0; w < words; w++) tn_textbuf_append_str(&b, pieces[tn_rng_below(&rng, 7)]);
        lines[i] = b.data;
        lengths[i] = b.len;
    }
}

static void write_lines(const char *path, int from, int to, int final_newline) {
    TnStreamWriter w;
    TnError err;
    CHECK(tn_stream_writer_open(&w, path, &err) == 0, "open %s: %s", path, err.msg);
    for (int i = from; i < to; i++) {
        tn_stream_writer_write(&w, lines[i], lengths[i], &err);
        if (i + 1 < to || final_newline) tn_stream_writer_write(&w, "\n", 1, &err);
    }
    CHECK(tn_stream_writer_commit(&w, &err) == 0, "commit %s: %s", path, err.msg);
}

/* Reads path and compares with lines[0..n); returns the reader's status. */
static int read_lines(const char *path, int n, int *matches, TnError *err) {
    TnLineReader r;
    if (tn_line_reader_open(&r, path, err)) return -1;
    int count = 0, rc;
    char *line;
    size_t len;
    *matches = 1;
    while ((rc = tn_line_reader_next(&r, &line, &len, err)) == 1) {
        if (count >= n || len != lengths[count] || memcmp(line, lines[count], len) != 0) *matches = 0;
        count++;
    }
    if (count != n) *matches = 0;
    tn_line_reader_close(&r);
    return rc;
}

static void test_round_trips(const char *dir) {
    static const char *names[] = {"a.jsonl", "a.jsonl.gz", "a.jsonl.zst"};
    char path[4200];
    for (int k = 0; k < 3; k++) {
        for (int newline = 0; newline <= 1; newline++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[k]);
            write_lines(path, 0, N_LINES, newline);
            int matches;
            TnError err;
            int rc = read_lines(path, N_LINES, &matches, &err);
            CHECK(rc == 0 && matches, "%s (final newline %d): round trip rc %d %s", names[k], newline, rc,
                  rc ? err.msg : "");
        }
    }
    /* `cat a.gz b.gz` is one valid gzip stream of both. */
    char first[4200], second[4200], both[4200], cmd[13000];
    snprintf(first, sizeof first, "%s/first.gz", dir);
    snprintf(second, sizeof second, "%s/second.gz", dir);
    snprintf(both, sizeof both, "%s/both.gz", dir);
    write_lines(first, 0, 100, 1);
    write_lines(second, 100, N_LINES, 1);
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s'", first, second, both);
    CHECK(system(cmd) == 0, "cat");
    int matches;
    TnError err;
    CHECK(read_lines(both, N_LINES, &matches, &err) == 0 && matches, "concatenated gzip members");
}

static void test_bad_input(const char *dir) {
    static const char *names[] = {"t.jsonl.gz", "t.jsonl.zst"};
    char path[4200];
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        write_lines(path, 0, 50, 1);
        FILE *fp = fopen(path, "r+b");
        fseek(fp, 0, SEEK_END);
        long size = ftell(fp);
        fclose(fp);
        CHECK(truncate(path, size / 2) == 0, "truncate");
        int matches;
        TnError err;
        int rc = read_lines(path, 50, &matches, &err);
        CHECK(rc == -1 && strstr(err.msg, path) && (strstr(err.msg, "truncated") || strstr(err.msg, "corrupt")),
              "%s truncated: rc %d, message [%s]", names[k], rc, rc ? err.msg : "");
        fp = fopen(path, "wb");
        fputs("this is not compressed at all\n", fp);
        fclose(fp);
        rc = read_lines(path, 1, &matches, &err);
        CHECK(rc == -1 && strstr(err.msg, path) && strstr(err.msg, "corrupt"), "%s garbage: rc %d [%s]", names[k],
              rc, rc ? err.msg : "");
    }
    TnLineReader r;
    TnError err;
    snprintf(path, sizeof path, "%s/missing.jsonl", dir);
    CHECK(tn_line_reader_open(&r, path, &err) == -1 && strstr(err.msg, path), "missing file named");

    /* An aborted writer leaves nothing behind, not even its temporary file. */
    TnStreamWriter w;
    snprintf(path, sizeof path, "%s/aborted.jsonl.zst", dir);
    tn_stream_writer_open(&w, path, &err);
    tn_stream_writer_write(&w, "partial\n", 8, &err);
    tn_stream_writer_abort(&w);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q aborted", dir);
    CHECK(system(cmd) != 0, "aborted writer left a file");
}

/* Keeps documents whose text has an even length (upper-cased), rejects the
 * others and malformed lines. */
static void upper_even(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                       TnTextBuf *kept, TnTextBuf *rejected) {
    (void)context, (void)thread;
    cJSON *json, *text;
    if (tn_doc_open(corpus, b, i, &json, &text, rejected)) return;
    size_t n = strlen(text->valuestring);
    if (n % 2) {
        tn_doc_reject(corpus, b, i, "odd", NULL, rejected);
    } else {
        for (size_t k = 0; k < n; k++)
            if (text->valuestring[k] >= 'a' && text->valuestring[k] <= 'z') text->valuestring[k] -= 32;
        tn_doc_append_json(kept, json);
    }
    cJSON_Delete(json);
}

static void test_pipeline(const char *dir, uint64_t seed) {
    char input[4200], out1[4200], out2[4200], rej1[4200], rej2[4200];
    snprintf(input, sizeof input, "%s/corpus.jsonl.gz", dir);
    TnStreamWriter w;
    TnError err;
    tn_stream_writer_open(&w, input, &err);
    TnRng rng;
    tn_rng_seed(&rng, seed, 1);
    int n_docs = 10000, malformed = 0;
    for (int i = 0; i < n_docs; i++) {
        char line[200];
        int n = (int)tn_rng_below(&rng, 40);
        if (i % 1000 == 7) {
            snprintf(line, sizeof line, "{\"text\": broken %d\n", i);
            malformed++;
        } else {
            snprintf(line, sizeof line, "{\"text\":\"%.*s\",\"id\":%d}\n", n, "the quick brown fox jumps over the dog", i);
        }
        tn_stream_writer_write(&w, line, strlen(line), &err);
        if (i % 3000 == 0) tn_stream_writer_write(&w, "   \n", 4, &err); /* blank lines are skipped */
    }
    tn_stream_writer_commit(&w, &err);
    const char *inputs[] = {input};
    snprintf(out1, sizeof out1, "%s/out1.jsonl.zst", dir);
    snprintf(out2, sizeof out2, "%s/out2.jsonl.zst", dir);
    tn_rejects_path_for(out1, rej1, sizeof rej1);
    tn_rejects_path_for(out2, rej2, sizeof rej2);
    CHECK(strstr(rej1, "out1.rejects.jsonl.zst") != NULL, "rejects path %s", rej1);
    TnPipeline p = {.inputs = inputs, .n_inputs = 1, .output = out1, .rejects = rej1, .label = "test", .threads = 1};
    TnPipelineCounts c1, c2;
    CHECK(tn_pipeline_run(&p, upper_even, NULL, &c1, &err) == 0, "pipeline 1 thread: %s", err.msg);
    p.output = out2, p.rejects = rej2, p.threads = 2;
    CHECK(tn_pipeline_run(&p, upper_even, NULL, &c2, &err) == 0, "pipeline 2 threads: %s", err.msg);
    CHECK(c1.documents == n_docs && c1.kept + c1.rejected == n_docs, "every document kept or rejected: %lld %lld %lld",
          c1.documents, c1.kept, c1.rejected);
    CHECK(c1.kept == c2.kept && c1.rejected == c2.rejected, "same counts");
    char *a, *b;
    size_t na, nb;
    tn_read_file(out1, &a, &na, &err);
    tn_read_file(out2, &b, &nb, &err);
    CHECK(na == nb && memcmp(a, b, na) == 0, "output identical for 1 and 2 threads");
    free(a), free(b);
    tn_read_file(rej1, &a, &na, &err);
    tn_read_file(rej2, &b, &nb, &err);
    CHECK(na == nb && memcmp(a, b, na) == 0, "rejects identical for 1 and 2 threads");
    free(a), free(b);

    /* The rejects hold the malformed lines with their reason and line number. */
    TnLineReader r;
    tn_line_reader_open(&r, rej1, &err);
    char *line;
    size_t len;
    int found = 0;
    while (tn_line_reader_next(&r, &line, &len, &err) == 1)
        found += strstr(line, "\"reason\":\"malformed JSON\"") && strstr(line, "\"raw\":\"{\\\"text\\\": broken") != NULL;
    tn_line_reader_close(&r);
    CHECK(found == malformed, "malformed lines in rejects: %d of %d", found, malformed);

    /* A missing input fails before anything is written. */
    const char *missing[] = {"/nonexistent/x.jsonl"};
    TnPipeline q = {.inputs = missing, .n_inputs = 1, .output = out1, .rejects = rej1, .label = "test", .threads = 1};
    CHECK(tn_pipeline_run(&q, upper_even, NULL, &c1, &err) == -1 && strstr(err.msg, "/nonexistent/x.jsonl"),
          "missing input named");
}

/* Lines the JSON library would silently cut are refused, and a rejects
 * record is valid JSON even for a line with invalid UTF-8. */
static void test_reject_records(void) {
    cJSON *json, *text;
    const char *reason;
    const char *nul = "{\"text\":\"a\\u0000b\"}";
    CHECK(tn_doc_parse(nul, strlen(nul), &json, &text, &reason) == -1 && strstr(reason, "NUL"), "\\u0000 refused");
    const char *bad = "{\"text\":\"caf\xe9 \xff\"}";
    TnTextBuf out = {0};
    tn_textbuf_clear(&out);
    tn_reject_append(&out, "r", "d", "f.jsonl", 7, bad, strlen(bad), 1);
    cJSON *record = cJSON_Parse(out.data), *raw = cJSON_GetObjectItemCaseSensitive(record, "raw");
    CHECK(cJSON_IsString(raw) && strcmp(raw->valuestring, "{\"text\":\"caf\xc3\xa9 \xc3\xbf\"}") == 0,
          "invalid UTF-8 kept as Latin-1 under \"raw\": %s", out.data);
    cJSON_Delete(record);
    tn_textbuf_clear(&out);
    const char *good = "{\"text\":\"ok\"}";
    tn_reject_append(&out, "r", NULL, "f.jsonl", 8, good, strlen(good), 1);
    CHECK(strcmp(out.data, "{\"reason\":\"r\",\"file\":\"f.jsonl\",\"line\":8,\"doc\":{\"text\":\"ok\"}}\n") == 0,
          "record: %s", out.data);
    tn_textbuf_free(&out);
}

/* Copies documents; stalls from document 6000 on, so that a run can be
 * killed after it wrote its first batch. */
static void copy_then_stall(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                            TnTextBuf *kept, TnTextBuf *rejected) {
    (void)context, (void)thread, (void)corpus, (void)rejected;
    if (b->index[i] >= 6000) pause();
    tn_textbuf_append(kept, b->lines[i].data, b->lines[i].len);
    tn_textbuf_append(kept, "\n", 1);
}

/* A run killed with SIGKILL after writing part of its output leaves nothing
 * at the output path (only its temporary file). Runs before anything else
 * uses OpenMP in this process, so the child may use it after fork(). */
static void test_killed_run(const char *dir) {
    char input[4200], output[4200], tmp[4300];
    snprintf(input, sizeof input, "%s/kill-input.jsonl", dir);
    snprintf(output, sizeof output, "%s/kill-output.jsonl", dir);
    FILE *fp = fopen(input, "w");
    for (int i = 0; i < 9000; i++) fprintf(fp, "{\"text\":\"document %d of the corpus to copy\"}\n", i);
    fclose(fp);
    pid_t child = fork();
    if (child == 0) {
        const char *inputs[] = {input};
        TnPipeline p = {.inputs = inputs, .n_inputs = 1, .output = output, .label = "kill", .threads = 1, .quiet = 1};
        TnPipelineCounts counts;
        TnError err;
        tn_pipeline_run(&p, copy_then_stall, NULL, &counts, &err);
        _exit(0);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", output, (long)child);
    struct stat st;
    int written = 0;
    for (int wait = 0; wait < 2000 && !written; wait++) { /* up to 20 s for the first batch */
        written = stat(tmp, &st) == 0 && st.st_size > 0;
        if (!written) usleep(10000);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK(written, "the killed run wrote part of its output to %s", tmp);
    CHECK(stat(output, &st) != 0, "a killed run left nothing at the output path");
    remove(tmp);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    char dir[4096];
    make_temp_dir(dir, sizeof dir, "stream");
    test_killed_run(dir);
    make_lines(seed);
    test_round_trips(dir);
    test_bad_input(dir);
    test_reject_records();
    test_pipeline(dir, seed);
    for (int i = 0; i < N_LINES; i++) free(lines[i]);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
