/* tnllm generate: text generation at a constant cost per token (Alg. 4),
 * streamed, with an interactive mode and saved states. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/cmd_generate_batch.h"
#include "cli/model_dir.h"
#include "infer/generate.h"
#include "infer/prompt.h"
#include "infer/state_file.h"
#include "util/fileio.h"
#include "util/progress.h"

#define MAX_STOPS 8
/* Output bytes kept to match stop strings against. */
#define TAIL_BYTES 1024
/* Prompts decoded together by default with --prompts. */
#define DEFAULT_BATCH_SIZE 32

static void usage(void) {
    TnSamplingParams d = tn_sampling_defaults();
    printf("usage: tnllm generate -m DIR [-p PROMPT | -f FILE] [-n N] [options]\n"
           "       tnllm generate -m DIR --prompts FILE [-o OUT.jsonl] [--batch-size B] [-n N] [options]\n\n"
           "Prefills the prompt (chunked Lightning Attention-2), then decodes with the recurrent update of\n"
           "Alg. 4 at the same cost per token whatever the context, streaming the text to stdout. The last\n"
           "line (on stderr) gives the prefill and decode speeds in tokens/s. Every model switch of SPEC\n"
           "section 3 runs (--pe ape stops at its max_position_embeddings); the softmax Transformer\n"
           "baseline (--arch transformer) decodes with a KV cache of its max_position_embeddings\n"
           "(default %d) positions, allocated up front.\n"
           "  -m, --model DIR        HF model directory (tokenizer.json or tokenizer.model there, else bytes)\n"
           "  -p, --prompt TEXT      prompt (any bytes; may be empty: generation starts from <s>)\n"
           "  -f, --file FILE        read the prompt from FILE\n"
           "  -n, --n-predict N      tokens to generate (default 128; 0: prefill only; also --predict); a character\n"
           "                         the limit cuts in half (a byte-level model spells one over several tokens) is\n"
           "                         not printed\n"
           "  --temp T               temperature, 0 = greedy (default %.2g; also --temperature)\n"
           "  --top-k K              sample among the K most likely tokens, 0 = all (default %d)\n"
           "  --top-p P              nucleus: the most likely tokens reaching probability P (default %.2g)\n"
           "  --min-p P              keep the tokens at least P times as likely as the most likely one, 0 = all\n"
           "                         (default %.2g)\n"
           "  --repeat-penalty R     penalty on the last %d tokens' logits, 1 = none (default %.2g)\n"
           "  --seed S               sampling seed (default: a random one per run, printed: --seed replays it)\n"
           "  -t, --threads N        OpenMP threads (default: all cores)\n"
           "  --stop STR             stop once the output ends with STR (up to %d times)\n"
           "  --no-bos               do not start the prompt with <s>\n"
           "  --ignore-eos           generate past the end-of-sequence token (by default generation ends there,\n"
           "                         before -n tokens, saying so on stderr; --prompts: stop_reason \"eos\")\n"
           "  --prompts FILE         batched prompts: one per line, or JSON Lines with a string \"prompt\" (or\n"
           "                         \"text\") per line when the first non-empty line starts with '{' (then a prompt\n"
           "                         may hold newlines); empty lines are skipped. Each group of --batch-size prompts\n"
           "                         is prefilled, then decoded together (one batched step per token for all live\n"
           "                         sequences; those that hit EOS, --stop or -n drop out). Prompt i samples with\n"
           "                         its own stream i of --seed, so its text does not depend on the batch size.\n"
           "                         Writes one JSON line per prompt, in file order: {\"index\", \"prompt\", \"text\",\n"
           "                         \"tokens\", \"stop_reason\": \"eos\" | \"stop\" | \"length\"}, the text whole\n"
           "                         characters only (one cut by -n dropped, bytes that are not UTF-8 as U+FFFD);\n"
           "                         progress and the total tokens/s on stderr. Not with -p, -f, -i, --int8,\n"
           "                         --load-state, --save-state\n"
           "  --batch-size B         prompts decoded together at most (default %d); memory grows by one state each\n"
           "  -o, --output FILE      with --prompts: write the JSON lines to FILE (atomically) instead of stdout\n"
           "  -i, --interactive      after the prompt, read lines from stdin and answer each, keeping the\n"
           "                         state: the conversation is never re-read (an empty line or EOF ends)\n"
           "  --load-state FILE      continue from a saved state; the prompt, if any, is appended\n"
           "  --save-state FILE      save the state at the end (with -n 0: right after the prompt)\n"
           "  --prefill-rows N       tokens per prefill step (default %d)\n"
           "  --int8                 decode with int8 weights (per-row absmax): ~4x fewer bytes per token\n"
           "  --device NAME          where the layers run: cpu (default), or cuda (one GPU: bf16 weights with fp32\n"
           "                         accumulation, fp32 states, decode steps replayed as CUDA graphs; the\n"
           "                         released blocks only (no --arch transformer, --pe ape, other norms or\n"
           "                         activations, --gate off); not with --int8, --load-state, --save-state).\n"
           "                         This tnllm is %s.\n",
           TN_SESSION_KV_CONTEXT, d.temperature, d.top_k, d.top_p, d.min_p, TN_SESSION_RECENT, d.repeat_penalty,
           MAX_STOPS, DEFAULT_BATCH_SIZE, TN_SESSION_PREFILL_ROWS, tn_device_cuda_build());
}

/* A seed of the run's own: runs started within one second must differ, so
 * not the clock's seconds; below 2^62 so that --seed (at most 2^62) replays
 * it. The kernel's random bytes, or where they are not to be had (an
 * uninitialised pool, no getrandom) the clock's nanoseconds and the pid. */
static uint64_t fresh_seed(void) {
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        seed = ((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec) ^ (uint64_t)getpid() << 40;
    }
    return seed & ((UINT64_C(1) << 62) - 1);
}

typedef struct Output {
    const TnTokenizer *tok;
    const char *stops[MAX_STOPS];
    int n_stops;
    char tail[TAIL_BYTES];  /* the last output bytes */
    size_t tail_len;
    int stopped;            /* the output ended with a stop string */
    char held[3];           /* an unfinished character at the end, not printed yet */
    size_t n_held;
    int keeps_unfinished;   /* --save-state: a later --load-state run goes on from these bytes, so print them */
} Output;

/* Prints n bytes after the held ones, holding back an unfinished character
 * at the end (tn_utf8_unfinished) until the tokens that complete it come. */
static void print_bytes(Output *o, const char *bytes, size_t n) {
    char joined[sizeof o->held + 3];
    if (o->n_held + n <= sizeof joined) { /* the unfinished end may begin in the held bytes */
        memcpy(joined, o->held, o->n_held);
        memcpy(joined + o->n_held, bytes, n);
        bytes = joined;
        n += o->n_held;
    } else { /* it lies within the last 3 of the n > 3 new bytes */
        fwrite(o->held, 1, o->n_held, stdout);
    }
    o->n_held = tn_utf8_unfinished(bytes, n);
    fwrite(bytes, 1, n - o->n_held, stdout);
    memcpy(o->held, bytes + n - o->n_held, o->n_held);
    fflush(stdout);
}

/* Streams a token and reports whether the output now ends with a stop string. */
static int print_token(void *user, int32_t token) {
    Output *o = user;
    size_t n;
    const char *bytes = tn_tokenizer_token_bytes(o->tok, token, &n);
    print_bytes(o, bytes, n);
    if (n > TAIL_BYTES) { /* a piece longer than the tail: its end is the tail */
        bytes += n - TAIL_BYTES;
        n = TAIL_BYTES;
    }
    if (o->tail_len + n > TAIL_BYTES) {
        size_t drop = o->tail_len + n - TAIL_BYTES;
        memmove(o->tail, o->tail + drop, o->tail_len - drop);
        o->tail_len -= drop;
    }
    memcpy(o->tail + o->tail_len, bytes, n);
    o->tail_len += n;
    o->stopped = tn_ends_with_stop(o->stops, o->n_stops, o->tail, o->tail_len);
    return o->stopped;
}

typedef struct Timing {
    double prefill_seconds, decode_seconds;
    long long prefill_tokens, decode_tokens;
} Timing;

static void prefill_text(TnSession *s, const TnTokenizer *tok, const char *text, size_t len, int add_bos,
                         Timing *timing) {
    TnError err;
    int32_t *ids;
    size_t n;
    if (tn_prompt_tokens(tok, text, len, add_bos, s->model->config.vocab_size, &ids, &n, &err))
        tn_die("tnllm generate: %s", err.msg);
    if (n == 0) { free(ids); return; }
    double t0 = tn_now();
    if (tn_session_prefill(s, 0, ids, n, &err)) tn_die("tnllm generate: %s", err.msg);
    timing->prefill_seconds += tn_now() - t0;
    timing->prefill_tokens += (long long)n;
    free(ids);
}

/* Generates up to n_predict tokens, ending at eos_token (< 0: never); says
 * so when that ended it, which the text alone does not show. A character
 * left unfinished at the end is dropped, not printed in half, unless the
 * state is saved: its tokens are in the state, and the continuation's
 * output completes it. */
static void generate(TnSession *s, TnSampler *sampler, int n_predict, int32_t eos_token, Output *out,
                     Timing *timing) {
    TnError err;
    int n;
    double t0 = tn_now();
    out->stopped = 0;
    if (tn_generate(s, sampler, n_predict, eos_token, print_token, out, &n, &err))
        tn_die("tnllm generate: %s", err.msg);
    timing->decode_seconds += tn_now() - t0;
    timing->decode_tokens += n;
    if (out->keeps_unfinished) fwrite(out->held, 1, out->n_held, stdout);
    out->n_held = 0;
    if (n < n_predict && !out->stopped) fprintf(stderr, "\n[end of sequence after %d tokens]", n);
}

int cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *prompt_file = NULL, *load_state = NULL, *save_state = NULL;
    const char *prompts_file = NULL, *output = NULL;
    int batch_size = DEFAULT_BATCH_SIZE;
    int n_predict = 128, threads = 0, add_bos = 1, interactive = 0, prefill_rows = 0, seed_given = 0, int8 = 0;
    int ignore_eos = 0;
    TnDevice device = TN_DEVICE_CPU;
    TnSamplingParams sp = tn_sampling_defaults();
    Output out = {0};
    TnArgs a;
    args_init(&a, "generate", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, "-m", "--model")) dir = args_value(&a);
        else if (args_is(&a, "-p", "--prompt")) prompt = args_value(&a);
        else if (args_is(&a, "-f", "--file")) prompt_file = args_value(&a);
        else if (args_is(&a, NULL, "--prompts")) prompts_file = args_value(&a);
        else if (args_is(&a, NULL, "--batch-size")) batch_size = (int)args_int(&a, 1, 1 << 16);
        else if (args_is(&a, "-o", "--output")) output = args_value(&a);
        else if (args_is(&a, "-n", "--n-predict") || args_is(&a, NULL, "--predict"))
            n_predict = (int)args_int(&a, 0, 1 << 30);
        else if (args_is(&a, NULL, "--temp") || args_is(&a, NULL, "--temperature"))
            sp.temperature = (float)args_double(&a, 0, 1e6);
        else if (args_is(&a, NULL, "--top-k")) sp.top_k = (int)args_int(&a, 0, 1 << 30);
        else if (args_is(&a, NULL, "--top-p")) sp.top_p = (float)args_double(&a, 0, 1);
        else if (args_is(&a, NULL, "--min-p")) sp.min_p = (float)args_double(&a, 0, 1);
        else if (args_is(&a, NULL, "--repeat-penalty")) sp.repeat_penalty = (float)args_double(&a, 1e-3, 1e3);
        else if (args_is(&a, NULL, "--seed")) { sp.seed = (uint64_t)args_int(&a, 0, (1LL << 62)); seed_given = 1; }
        else if (args_is(&a, "-t", "--threads")) threads = (int)args_int(&a, 1, 4096);
        else if (args_is(&a, NULL, "--stop")) {
            if (out.n_stops == MAX_STOPS) tn_die_usage("tnllm generate: at most %d --stop strings", MAX_STOPS);
            out.stops[out.n_stops] = args_value(&a);
            if (strlen(out.stops[out.n_stops]) > TAIL_BYTES)
                tn_die_usage("tnllm generate: a --stop string is longer than %d bytes", TAIL_BYTES);
            out.n_stops++;
        }
        else if (args_is(&a, NULL, "--no-bos")) add_bos = 0;
        else if (args_is(&a, NULL, "--ignore-eos")) ignore_eos = 1;
        else if (args_is(&a, "-i", "--interactive")) interactive = 1;
        else if (args_is(&a, NULL, "--load-state")) load_state = args_value(&a);
        else if (args_is(&a, NULL, "--save-state")) save_state = args_value(&a);
        else if (args_is(&a, NULL, "--prefill-rows")) prefill_rows = (int)args_int(&a, 1, 1 << 16);
        else if (args_is(&a, NULL, "--int8")) int8 = 1;
        else if (args_is(&a, NULL, "--device")) {
            const char *name = args_value(&a);
            if (tn_device_parse(name, &device)) tn_die_usage("tnllm generate: --device %s: use cpu or cuda", name);
        }
        else args_unknown(&a);
    }
    args_require(&a, dir, "-m DIR");
    if (prompt && prompt_file) tn_die_usage("tnllm generate: give -p or -f, not both");
    if (device != TN_DEVICE_CPU && (int8 || load_state || save_state))
        tn_die_usage("tnllm generate: %s runs on the CPU only: drop it or --device %s",
                     int8 ? "--int8" : load_state ? "--load-state" : "--save-state", tn_device_name(device));
    if (prompts_file && (prompt || prompt_file || interactive || load_state || save_state || int8))
        tn_die_usage("tnllm generate: --prompts takes its prompts from the file: not with -p, -f, -i, --load-state, "
                     "--save-state or --int8");
    if (output && !prompts_file)
        tn_die_usage("tnllm generate: -o writes the JSON lines of --prompts; give --prompts FILE");
    if (threads) omp_set_num_threads(threads);
    if (!seed_given) sp.seed = fresh_seed();

    TnError err;
    TnModel m;
    model_dir_load(&m, dir, "generate");
    TnTokenizer *tok = model_dir_tokenizer(&m, dir, "generate");
    out.tok = tok;
    out.keeps_unfinished = save_state != NULL;
    int32_t eos_token = ignore_eos ? -1 : m.config.eos_token_id;
    if (prompts_file) {
        BatchOptions batch = {prompts_file, output, batch_size, n_predict, add_bos, prefill_rows, eos_token, out.stops,
                              out.n_stops, device, sp};
        generate_batch(&m, tok, &batch);
        tn_tokenizer_free(tok);
        tn_model_free(&m);
        return 0;
    }
    char *file_text = NULL;
    size_t prompt_len = prompt ? strlen(prompt) : 0;
    if (prompt_file) {
        if (tn_read_file(prompt_file, &file_text, &prompt_len, &err)) tn_die("%s", err.msg);
        prompt = file_text;
    }
    TnSession s;
    if (tn_session_init_on(&s, &m, device, 1, prefill_rows, &err)) tn_die("tnllm generate: %s", err.msg);
    TnQuantModel quant = {0};
    if (int8) {
        tn_quantize_model(&quant, &m);
        tn_session_use_int8(&s, &quant);
    }
    TnSampler sampler;
    tn_sampler_init(&sampler, &sp, m.config.vocab_size);
    fprintf(stderr, "tnllm generate: %s%s, seed %llu, temp %.3g, top-k %d, top-p %.3g, min-p %.3g, repeat penalty "
                    "%.3g, state %.1f KiB per sequence\n",
            dir, int8 ? " (int8)" : "", (unsigned long long)sp.seed, sp.temperature, sp.top_k, sp.top_p, sp.min_p,
            sp.repeat_penalty, tn_session_state_bytes(&m.config) / 1024.0);

    Timing timing = {0};
    if (load_state) {
        if (tn_state_load(&s, 0, load_state, &err)) tn_die("%s", err.msg);
        fprintf(stderr, "continuing %s at position %d\n", load_state, s.position[0]);
        if (prompt_len) prefill_text(&s, tok, prompt, prompt_len, 0, &timing);
    } else {
        prefill_text(&s, tok, prompt ? prompt : "", prompt_len, add_bos, &timing);
    }
    if (prompt_len) fwrite(prompt, 1, prompt_len, stdout);
    generate(&s, &sampler, n_predict, eos_token, &out, &timing);

    char *line = NULL;
    size_t cap = 0;
    while (interactive) {
        fprintf(stderr, "\n> ");
        ssize_t len = getline(&line, &cap, stdin);
        if (len <= 1) break; /* EOF or an empty line */
        prefill_text(&s, tok, line, (size_t)len, 0, &timing);
        out.tail_len = 0;
        generate(&s, &sampler, n_predict, eos_token, &out, &timing);
    }
    free(line);
    if (save_state) {
        if (tn_state_save(&s, 0, save_state, &err)) tn_die("%s", err.msg);
        fprintf(stderr, "\nsaved the state at position %d to %s", s.position[0], save_state);
    }
    fprintf(stderr, "\nprefill: %lld tokens in %.3f s (%.1f tokens/s); decode: %lld tokens in %.3f s (%.1f tokens/s)\n",
            timing.prefill_tokens, timing.prefill_seconds,
            timing.prefill_seconds > 0 ? timing.prefill_tokens / timing.prefill_seconds : 0.0, timing.decode_tokens,
            timing.decode_seconds, timing.decode_seconds > 0 ? timing.decode_tokens / timing.decode_seconds : 0.0);
    if (s.device) fprintf(stderr, "%s\n", tn_session_device_describe(s.device)); /* after decoding: graphs or not */
    free(file_text);
    tn_sampler_free(&sampler);
    tn_session_free(&s);
    tn_quant_free(&quant);
    tn_tokenizer_free(tok);
    tn_model_free(&m);
    return 0;
}
