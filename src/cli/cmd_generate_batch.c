#include "cli/cmd_generate_batch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "data/jsonl.h"
#include "infer/generate.h"
#include "infer/prompt.h"
#include "infer/prompt_list.h"
#include "util/fileio.h"
#include "util/progress.h"

/* The text each sequence of a group has generated, for the sink. */
typedef struct GroupText {
    const TnTokenizer *tok;
    const BatchOptions *options;
    TnTextBuf *text; /* (batch_size) */
} GroupText;

static int append_token(void *user, int seq, int32_t token) {
    GroupText *g = user;
    size_t n;
    const char *bytes = tn_tokenizer_token_bytes(g->tok, token, &n);
    TnTextBuf *t = &g->text[seq];
    tn_textbuf_append(t, bytes, n);
    return tn_ends_with_stop(g->options->stops, g->options->n_stops, t->data, t->len);
}

/* Dies with "tnllm generate: <msg>", first removing the unfinished -o
 * file (tn_atomic_abort), so that a failed run leaves no temporary file. */
static void die_discarding(TnAtomicFile *file, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die_discarding(TnAtomicFile *file, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (file->fp) tn_atomic_abort(file);
    tn_die("tnllm generate: %s", msg);
}

static void prefill_prompt(TnSession *s, int seq, const TnTokenizer *tok, const TnPromptList *list, int index,
                           const BatchOptions *o, TnAtomicFile *file) {
    TnError err;
    int32_t *ids;
    size_t n;
    tn_session_reset(s, seq);
    if (tn_prompt_tokens(tok, list->text[index], list->length[index], o->add_bos, s->model->config.vocab_size, &ids, &n,
                         &err) ||
        tn_session_prefill(s, seq, ids, n, &err))
        die_discarding(file, "%s:%d: %s", o->prompts_path, list->line[index], err.msg);
    free(ids);
}

/* Appends a sequence's text as a JSON string of whole characters: an
 * unfinished one at the end (cut by -n) is dropped and bytes that are not
 * UTF-8 become U+FFFD (scratch holds the result), where
 * tn_json_append_string would write each as the Latin-1 character \u00XX,
 * a character the model never wrote. */
static void append_text(TnTextBuf *line, TnTextBuf *scratch, const TnTextBuf *text) {
    size_t len = text->len - tn_utf8_unfinished(text->data, text->len);
    tn_textbuf_clear(scratch);
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)text->data + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k > 0) tn_textbuf_append(scratch, text->data + i, (size_t)k);
        else tn_textbuf_append(scratch, "\xef\xbf\xbd", 3);
        i += k > 0 ? (size_t)k : 1;
    }
    tn_json_append_string(line, scratch->data, scratch->len);
}

static void write_out(TnAtomicFile *file, const TnTextBuf *line) {
    TnError err;
    if (file->fp) {
        if (tn_atomic_write(file, line->data, line->len, &err)) die_discarding(file, "%s", err.msg);
    } else if (fwrite(line->data, 1, line->len, stdout) != line->len) {
        tn_die("tnllm generate: cannot write to stdout");
    }
}

void generate_batch(const TnModel *m, const TnTokenizer *tok, const BatchOptions *o) {
    TnError err;
    TnPromptList list;
    if (tn_prompt_list_read(&list, o->prompts_path, &err)) tn_die("tnllm generate: %s", err.msg);
    int group_size = o->batch_size < list.count ? o->batch_size : list.count;
    TnSession s;
    if (tn_session_init_on(&s, m, o->device, group_size, o->prefill_rows, &err)) tn_die("tnllm generate: %s", err.msg);
    TnSampler *samplers = tn_malloc((size_t)group_size * sizeof *samplers);
    TnTextBuf *text = tn_calloc((size_t)group_size, sizeof *text);
    int *n_generated = tn_malloc((size_t)group_size * sizeof *n_generated);
    TnStopReason *reasons = tn_malloc((size_t)group_size * sizeof *reasons);
    for (int b = 0; b < group_size; b++) tn_sampler_init(&samplers[b], &o->sampling, m->config.vocab_size);
    TnAtomicFile file = {0};
    if (o->output_path && tn_atomic_open(&file, o->output_path, &err)) tn_die("tnllm generate: %s", err.msg);
    fprintf(stderr, "tnllm generate: %d prompts from %s in groups of %d, seed %llu, temp %.3g\n", list.count,
            o->prompts_path, group_size, (unsigned long long)o->sampling.seed, o->sampling.temperature);

    GroupText sink = {tok, o, text};
    TnTextBuf line = {0}, scratch = {0};
    TnProgress progress;
    tn_progress_start(&progress, "generate", "prompts", list.count);
    long long total_tokens = 0;
    double decode_seconds = 0;
    for (int first = 0; first < list.count; first += group_size) {
        int batch = list.count - first < group_size ? list.count - first : group_size;
        for (int b = 0; b < batch; b++) {
            prefill_prompt(&s, b, tok, &list, first + b, o, &file);
            tn_sampler_seed_stream(&samplers[b], (uint64_t)(first + b));
            tn_textbuf_clear(&text[b]);
        }
        double t0 = tn_now();
        if (tn_generate_batch(&s, batch, samplers, o->n_predict, o->eos_token, append_token, &sink,
                              n_generated, reasons, &err))
            die_discarding(&file, "%s", err.msg);
        decode_seconds += tn_now() - t0;
        for (int b = 0; b < batch; b++) {
            int index = first + b;
            tn_textbuf_clear(&line);
            char number[32];
            snprintf(number, sizeof number, "{\"index\": %d, \"prompt\": ", index);
            tn_textbuf_append_str(&line, number);
            tn_json_append_string(&line, list.text[index], list.length[index]);
            tn_textbuf_append_str(&line, ", \"text\": ");
            append_text(&line, &scratch, &text[b]);
            snprintf(number, sizeof number, ", \"tokens\": %d, ", n_generated[b]);
            tn_textbuf_append_str(&line, number);
            tn_textbuf_append_str(&line, "\"stop_reason\": \"");
            tn_textbuf_append_str(&line, tn_stop_reason_name(reasons[b]));
            tn_textbuf_append_str(&line, "\"}\n");
            write_out(&file, &line);
            total_tokens += n_generated[b];
        }
        char rate[64];
        snprintf(rate, sizeof rate, "%.1f tokens/s", decode_seconds > 0 ? total_tokens / decode_seconds : 0.0);
        tn_progress_update(&progress, first + batch, rate);
    }
    tn_progress_finish(&progress, list.count, NULL);
    if (file.fp && tn_atomic_commit(&file, &err)) tn_die("tnllm generate: %s", err.msg);
    fflush(stdout);
    fprintf(stderr, "decode: %lld tokens in %.3f s (%.1f tokens/s, %d sequences per step at most)\n", total_tokens,
            decode_seconds, decode_seconds > 0 ? total_tokens / decode_seconds : 0.0, group_size);
    tn_textbuf_free(&line);
    tn_textbuf_free(&scratch);
    for (int b = 0; b < group_size; b++) {
        tn_sampler_free(&samplers[b]);
        tn_textbuf_free(&text[b]);
    }
    free(samplers);
    free(text);
    free(n_generated);
    free(reasons);
    tn_session_free(&s);
    tn_prompt_list_free(&list);
}
