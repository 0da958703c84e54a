/* cmd_generate_batch.h: `tnllm generate --prompts FILE`, many prompts decoded
 * together (infer/generate.h: tn_generate_batch), one JSON line each. */
#ifndef TN_CLI_CMD_GENERATE_BATCH_H
#define TN_CLI_CMD_GENERATE_BATCH_H

#include "infer/sampling.h"
#include "model/transnormer.h"
#include "tokenizer/tokenizer.h"
#include "util/device.h"

typedef struct BatchOptions {
    const char *prompts_path, *output_path; /* output NULL: stdout */
    int batch_size, n_predict, add_bos, prefill_rows;
    int32_t eos_token; /* the token that ends a sequence; -1: none (--ignore-eos) */
    const char *const *stops;
    int n_stops;
    TnDevice device;
    TnSamplingParams sampling;
} BatchOptions;

/* Reads the prompts, runs them in groups of batch_size (each group
 * prefilled, then decoded together; prompt i samples with stream i of the
 * seed) and writes {"index", "prompt", "text", "tokens", "stop_reason"}
 * per prompt in file order, atomically to output_path or to stdout, with a
 * progress line and the total tokens/s on stderr. Dies on any error. */
void generate_batch(const TnModel *m, const TnTokenizer *tok, const BatchOptions *o);

#endif
