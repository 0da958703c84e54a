/* Batched generation (tn_generate_batch) on a small random model: greedy,
 * every sequence of one batch emits what tn_generate gives its prompt alone,
 * with sequences dropping out at different steps (EOS, a sink stop, the
 * length) and the survivors moved into their slots; sampled, each prompt's
 * tokens do not depend on the batch size it is grouped in (stream i of the
 * seed for prompt i). Then the prompts file reader: plain lines, JSON Lines
 * with "prompt" or "text", empty lines skipped, malformed files refused with
 * FILE:LINE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/generate.h"
#include "infer/prompt_list.h"
#include "models.h"
#include "test.h"
#include "util/rng.h"

enum { PROMPTS = 7, NEW = 24, MAX_PROMPT = 20 };

typedef struct Prompts {
    int32_t tokens[PROMPTS][MAX_PROMPT];
    int length[PROMPTS];
} Prompts;

/* What each sequence emitted; a sink stop after stop_after[seq] tokens (0: none). */
typedef struct Outputs {
    int32_t tokens[PROMPTS][NEW];
    int n[PROMPTS];
    int stop_after[PROMPTS];
    int offset; /* the first prompt of the group being run */
} Outputs;

static int record_batch(void *user, int seq, int32_t token) {
    Outputs *o = user;
    int p = o->offset + seq;
    o->tokens[p][o->n[p]++] = token;
    return o->stop_after[p] && o->n[p] == o->stop_after[p];
}

static int record_single(void *user, int32_t token) {
    Outputs *o = user;
    return record_batch(o, 0, token);
}

/* Runs the prompts in groups of `group` through tn_generate_batch, prompt i
 * sampling with stream i; fills out and the stop reasons. */
static void run_grouped(const TnModel *m, const Prompts *p, int group, const TnSamplingParams *sp, int32_t eos,
                        Outputs *out, TnStopReason *reasons) {
    TnError err;
    TnSession s;
    tn_session_init(&s, m, group, 8); /* prefill in steps of 8: several per prompt */
    TnSampler samplers[PROMPTS];
    for (int b = 0; b < group; b++) tn_sampler_init(&samplers[b], sp, m->config.vocab_size);
    int n_generated[PROMPTS];
    for (int first = 0; first < PROMPTS; first += group) {
        int batch = PROMPTS - first < group ? PROMPTS - first : group;
        for (int b = 0; b < batch; b++) {
            tn_session_reset(&s, b);
            CHECK(tn_session_prefill(&s, b, p->tokens[first + b], (size_t)p->length[first + b], &err) == 0,
                  "prefill: %s", err.msg);
            tn_sampler_seed_stream(&samplers[b], (uint64_t)(first + b));
        }
        out->offset = first;
        CHECK(tn_generate_batch(&s, batch, samplers, NEW, eos, record_batch, out, n_generated, reasons + first, &err) ==
                  0, "generate_batch: %s", err.msg);
        for (int b = 0; b < batch; b++)
            CHECK(n_generated[b] == out->n[first + b], "prompt %d: %d generated, the sink saw %d", first + b,
                  n_generated[b], out->n[first + b]);
    }
    for (int b = 0; b < group; b++) tn_sampler_free(&samplers[b]);
    tn_session_free(&s);
}

static void random_prompts(Prompts *p, int V, uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 7);
    for (int i = 0; i < PROMPTS; i++) {
        p->length[i] = 1 + (int)tn_rng_below(&rng, MAX_PROMPT);
        for (int t = 0; t < p->length[i]; t++) p->tokens[i][t] = (int32_t)tn_rng_below(&rng, (uint64_t)V);
    }
}

static void batched_generation(void) {
    const SmallShape shape = {96, 32, 2, 2, 64, 0, 0, "10"};
    TnModel m;
    uint64_t seed = test_seed();
    small_model(&m, &shape, seed);
    int V = m.config.vocab_size;
    Prompts p;
    random_prompts(&p, V, seed);
    TnError err;

    /* Greedy, each prompt alone with tn_generate. */
    TnSamplingParams greedy = {.temperature = 0, .top_k = 0, .top_p = 1, .repeat_penalty = 1.3f, .seed = 0};
    static Outputs alone, batched;
    memset(&alone, 0, sizeof alone);
    for (int i = 0; i < PROMPTS; i++) alone.stop_after[i] = i % 3 == 1 ? 3 + 2 * i : 0; /* some stop early */
    memcpy(batched.stop_after, alone.stop_after, sizeof alone.stop_after);
    /* EOS: prompt 0's 5th greedy token (found by a first run without EOS). */
    TnSession s;
    tn_session_init(&s, &m, 1, 8);
    TnSampler sampler;
    tn_sampler_init(&sampler, &greedy, V);
    int n;
    tn_session_prefill(&s, 0, p.tokens[0], (size_t)p.length[0], &err);
    alone.offset = 0;
    CHECK(tn_generate(&s, &sampler, NEW, -1, record_single, &alone, &n, &err) == 0, "generate: %s", err.msg);
    int32_t eos = alone.tokens[0][4];
    int first_eos = 0;
    while (alone.tokens[0][first_eos] != eos) first_eos++;
    for (int i = 0; i < PROMPTS; i++) {
        alone.n[i] = 0;
        alone.offset = i;
        tn_session_reset(&s, 0);
        CHECK(tn_session_prefill(&s, 0, p.tokens[i], (size_t)p.length[i], &err) == 0, "prefill: %s", err.msg);
        CHECK(tn_generate(&s, &sampler, NEW, eos, record_single, &alone, &n, &err) == 0, "generate: %s", err.msg);
    }
    CHECK(alone.n[0] == first_eos, "prompt 0 stops at EOS after %d tokens, want %d", alone.n[0], first_eos);
    tn_sampler_free(&sampler);
    tn_session_free(&s);

    TnStopReason reasons[PROMPTS];
    run_grouped(&m, &p, PROMPTS, &greedy, eos, &batched, reasons);
    int same = 0, lengths[PROMPTS];
    for (int i = 0; i < PROMPTS; i++) {
        lengths[i] = batched.n[i];
        int equal = batched.n[i] == alone.n[i] &&
                    memcmp(batched.tokens[i], alone.tokens[i], (size_t)alone.n[i] * sizeof(int32_t)) == 0;
        same += equal;
        CHECK(equal, "prompt %d: batched greedy gave %d tokens, alone %d, or different ones", i, batched.n[i],
              alone.n[i]);
        TnStopReason want = alone.stop_after[i] && alone.n[i] == alone.stop_after[i] ? TN_STOP_SINK
                            : alone.n[i] == NEW                                        ? TN_STOP_LENGTH
                                                                                       : TN_STOP_EOS;
        CHECK(reasons[i] == want, "prompt %d: stop reason %s, want %s", i, tn_stop_reason_name(reasons[i]),
              tn_stop_reason_name(want));
    }
    printf("greedy, %d prompts in one batch: %d equal to each alone; lengths", PROMPTS, same);
    for (int i = 0; i < PROMPTS; i++) printf(" %d", lengths[i]);
    printf(" (EOS %d)\n", eos);
    int distinct = 0;
    for (int i = 1; i < PROMPTS; i++) distinct += lengths[i] != lengths[0];
    CHECK(distinct > 0, "every sequence ran the same length: no drop-out was exercised");

    /* Sampled: the same per-prompt streams whatever the grouping. */
    TnSamplingParams sampled = {.temperature = 1.5f, .top_k = 0, .top_p = 1, .repeat_penalty = 1.1f, .seed = seed};
    static Outputs by_group[3];
    const int groups[3] = {PROMPTS, 3, 1};
    for (int g = 0; g < 3; g++) {
        memset(&by_group[g], 0, sizeof by_group[g]);
        run_grouped(&m, &p, groups[g], &sampled, -1, &by_group[g], reasons);
    }
    int varied = 0;
    for (int i = 0; i < PROMPTS; i++) {
        for (int g = 1; g < 3; g++)
            CHECK(by_group[g].n[i] == NEW && memcmp(by_group[g].tokens[i], by_group[0].tokens[i], sizeof(int32_t) * NEW) ==
                                                 0,
                  "prompt %d sampled in groups of %d differs from one batch of %d", i, groups[g], PROMPTS);
        for (int t = 1; t < NEW; t++) varied += by_group[0].tokens[i][t] != by_group[0].tokens[i][0];
    }
    CHECK(varied > PROMPTS, "sampling at temperature 1.5 gave near-constant outputs (%d changes)", varied);
    /* Prompt streams differ: two identical prompts would sample apart. */
    int differ = memcmp(by_group[0].tokens[0], by_group[0].tokens[1], sizeof(int32_t) * NEW) != 0;
    CHECK(differ, "prompts 0 and 1 sampled the same tokens");
    tn_model_free(&m);
}

/* Writes text to dir/name and reads it as a prompt list; returns its status. */
static int read_list(const char *dir, const char *name, const char *text, TnPromptList *list, TnError *err,
                     char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(text, 1, strlen(text), f) == strlen(text) && fclose(f) == 0, "cannot write %s", path);
    return tn_prompt_list_read(list, path, err);
}

static void prompt_files(void) {
    char dir[4096], path[4200], want[4400];
    make_temp_dir(dir, sizeof dir, "prompts");
    TnPromptList list;
    TnError err;
    CHECK(read_list(dir, "plain.txt", "first prompt\n\nsecond {x}\r\n\nthird", &list, &err, path, sizeof path) == 0,
          "plain: %s", err.msg);
    CHECK(list.count == 3 && strcmp(list.text[0], "first prompt") == 0 && strcmp(list.text[1], "second {x}") == 0 &&
              strcmp(list.text[2], "third") == 0 && list.line[1] == 3 && list.line[2] == 5 && list.length[2] == 5,
          "plain lines: %d prompts", list.count);
    tn_prompt_list_free(&list);

    CHECK(read_list(dir, "a.jsonl", "{\"prompt\": \"two\\nlines\", \"id\": 4}\n\n{\"text\": \"caf\\u00e9\"}\n", &list,
                    &err, path, sizeof path) == 0,
          "jsonl: %s", err.msg);
    CHECK(list.count == 2 && strcmp(list.text[0], "two\nlines") == 0 && strcmp(list.text[1], "caf\xc3\xa9") == 0 &&
              list.line[1] == 3,
          "jsonl prompts: %d", list.count);
    tn_prompt_list_free(&list);

    const struct { const char *text, *reason; int line; } bad[] = {
        {"{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"prompt\": \n", "malformed JSON", 3},
        {"{\"prompt\": \"a\"}\n\n[1, 2]\n", "not a JSON object", 3},
        {"{\"prompt\": \"a\"}\n{\"prompt\": 5}\n", "no string field", 2},
        {"{\"id\": 1}\n", "no string field", 1},
        {"{\"prompt\": \"a\\u0000b\"}\n", "NUL", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.jsonl", i);
        int rc = read_list(dir, name, bad[i].text, &list, &err, path, sizeof path);
        snprintf(want, sizeof want, "%s:%d: ", path, bad[i].line);
        CHECK(rc == -1 && strstr(err.msg, want) && strstr(err.msg, bad[i].reason),
              "bad file %zu: want \"%s%s\", got: %s", i, want, bad[i].reason, rc ? err.msg : "accepted");
        CHECK(list.count == 0 && !list.text, "a refused file leaves an empty list");
    }
    CHECK(read_list(dir, "empty.txt", "\n\r\n\n", &list, &err, path, sizeof path) == -1 && strstr(err.msg, "no prompts"),
          "a file of empty lines: %s", err.msg);
    CHECK(tn_prompt_list_read(&list, "/nonexistent/prompts.txt", &err) == -1 && strstr(err.msg, "/nonexistent"),
          "a missing file: %s", err.msg);
    remove_tree(dir);
}

int main(int argc, char **argv) {
    (void)argc;
    batched_generation();
    prompt_files();
    return TEST_DONE(argv[0]);
}
