/* tnllm eval: loss and perplexity of a model on a token shard or a text file. */
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_dir.h"
#include "data/corpus.h"
#include "data/shard.h"
#include "infer/perplexity.h"
#include "infer/quantize.h"
#include "model/blocks.h"
#include "util/fileio.h"

static void usage(void) {
    printf("usage: tnllm eval -m DIR (--tokens FILE | --text FILE) [--ctx T] [--stride S] [--batch B] [--device NAME]\n"
           "                  [-t THREADS]\n\n"
           "Scores a token shard (SPEC section 4) or a text file in windows of T tokens, each on the next-token\n"
           "predictions no earlier window scored, and prints the mean loss and the perplexity with a 95%% interval\n"
           "and how many of the tokens were scored: every one after the first, but with windows that do not\n"
           "overlap (--stride T) the first of each window, which has no context. Tokens after the last window\n"
           "that fits are scored by one more that ends at the end; a text shorter than T is one shorter window.\n"
           "  -m, --model DIR   HF model directory\n"
           "  --tokens FILE     token shard\n"
           "  --text FILE       text file (any bytes), tokenized on the fly with the model's tokenizer\n"
           "                    (DIR/tokenizer.json or .model, else byte-level) as one document after <s>;\n"
           "                    FILE.jsonl (.jsonl.gz, .jsonl.zst): the \"text\" field of each line, each\n"
           "                    document followed by </s>, as train and data tokenize read it (the tokens of\n"
           "                    --tokens on data tokenize's shard); text .gz/.zst decompressed\n"
           "  -c, --ctx T       window length (default 512)\n"
           "  --stride S        sliding windows S tokens apart; later windows score only new tokens\n"
           "                    (default T: non-overlapping)\n"
           "  --batch B         windows per forward pass (default 4)\n"
           "  --int8            score the int8 weights generate --int8 decodes with (per-row absmax), to\n"
           "                    measure the perplexity cost of quantization against a run without it\n"
           "  --device NAME     cpu (default: the fp32 forward), or cuda: the batch's windows as B sequences of\n"
           "                    the GPU inference session (generate --device cuda), %d tokens each per step,\n"
           "                    bf16 weights; not with --int8. This tnllm is %s.\n"
           "  -t, --threads N   OpenMP threads (default: all cores)\n",
           TN_EVAL_DEVICE_STEP, tn_device_cuda_build());
}

int cmd_eval(int argc, char **argv) {
    const char *dir = NULL, *tokens_path = NULL, *text_path = NULL;
    int ctx = 512, stride = 0, batch = 4, threads = 0, int8 = 0;
    TnDevice device = TN_DEVICE_CPU;
    TnArgs a;
    args_init(&a, "eval", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, "-m", "--model")) dir = args_value(&a);
        else if (args_is(&a, NULL, "--tokens")) tokens_path = args_value(&a);
        else if (args_is(&a, NULL, "--text")) text_path = args_value(&a);
        else if (args_is(&a, "-c", "--ctx")) ctx = (int)args_int(&a, 2, 1 << 24);
        else if (args_is(&a, NULL, "--stride")) stride = (int)args_int(&a, 1, 1 << 24);
        else if (args_is(&a, "-b", "--batch")) batch = (int)args_int(&a, 1, 1 << 16);
        else if (args_is(&a, NULL, "--int8")) int8 = 1;
        else if (args_is(&a, NULL, "--device")) {
            const char *name = args_value(&a);
            if (tn_device_parse(name, &device)) tn_die_usage("tnllm eval: --device %s: use cpu or cuda", name);
        }
        else if (args_is(&a, "-t", "--threads")) threads = (int)args_int(&a, 1, 4096);
        else args_unknown(&a);
    }
    if (int8 && device != TN_DEVICE_CPU)
        tn_die_usage("tnllm eval: --int8 scores on the CPU only: drop it or --device %s", tn_device_name(device));
    args_require(&a, dir, "-m DIR");
    if (!tokens_path == !text_path)
        tn_die_usage("tnllm eval: give one of --tokens FILE and --text FILE (see tnllm eval --help)");
    if (!stride) stride = ctx;
    if (stride > ctx) tn_die_usage("tnllm eval: --stride %d is larger than --ctx %d", stride, ctx);
    TnError err;
    if (tn_check_batch_size(batch, ctx, &err)) tn_die_usage("tnllm eval: --batch, --ctx: %s", err.msg);
    if (threads) omp_set_num_threads(threads);

    TnModel m;
    model_dir_load(&m, dir, "eval");
    if (int8) {
        /* The fp32 forward on the dequantized int8 weights computes what the int8 decode path does. */
        TnQuantModel q;
        tn_quantize_model(&q, &m);
        tn_dequantize_into(&m, &q);
        tn_quant_free(&q);
    }
    TnEvalResult r;
    const char *path = tokens_path ? tokens_path : text_path;
    if (tokens_path || tn_corpus_is_jsonl(text_path)) {
        TnShard shard = {0};
        uint32_t *corpus = NULL; /* the documents of a .jsonl text */
        const uint32_t *tokens;
        size_t n;
        if (tokens_path) {
            if (tn_shard_open(&shard, tokens_path, &err) || tn_shard_check_vocab(&shard, m.config.vocab_size, &err))
                tn_die("%s", err.msg);
            tokens = shard.tokens;
            n = shard.n_tokens;
        } else {
            TnTokenizer *tok = model_dir_tokenizer(&m, dir, "eval");
            if (tn_corpus_read(text_path, tok, m.config.vocab_size, &corpus, &n, &err)) tn_die("%s", err.msg);
            tn_tokenizer_free(tok);
            tokens = corpus;
        }
        if (tn_eval_tokens(&m, tokens, n, ctx, stride, batch, device, 1, &r, &err))
            tn_die("%s on %s: %s", dir, path, err.msg); /* the model's error or the data's */
        if (tokens_path) tn_shard_close(&shard);
        free(corpus);
    } else {
        TnTokenizer *tok = model_dir_tokenizer(&m, dir, "eval");
        char *text;
        size_t len;
        if (tn_read_file(text_path, &text, &len, &err)) tn_die("%s", err.msg);
        if (tn_eval_text(&m, tok, text, len, ctx, stride, batch, device, 1, &r, &err))
            tn_die("%s on %s: %s", dir, text_path, err.msg);
        free(text);
        tn_tokenizer_free(tok);
    }
    printf("%s%s on %s (%s): %lld window%s of %d (stride %d), %lld of %lld tokens scored\n", dir, int8 ? " (int8)" : "",
           path, tn_device_name(device), r.n_windows, r.n_windows == 1 ? "" : "s", r.window,
           stride < r.window ? stride : r.window, r.n_scored, r.n_targets);
    printf("loss %.4f ± %.4f nats/token, perplexity %.4f [95%% interval %.4f, %.4f], %.0f tokens/s\n", r.mean_loss,
           r.std_error, r.perplexity, r.ppl_low, r.ppl_high, r.n_windows * (double)r.window / r.seconds);
    tn_model_free(&m);
    return 0;
}
