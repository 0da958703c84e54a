/* model_dir.h: the model a command reads from -m DIR (generate, eval, info).
 *
 * A path that is not a model directory fails with what to pass instead
 * when it is a training run's directory (tnllm train -o DIR: the model is
 * DIR/model) or a file of the model (DIR/model.safetensors): "DIR/config.json:
 * cannot open" alone does not say it. A model whose vocabulary is larger
 * than its tokenizer's loads with a warning: the ids beyond the tokenizer's
 * decode to nothing, so its generations can print nothing at all.
 */
#ifndef TN_CLI_MODEL_DIR_H
#define TN_CLI_MODEL_DIR_H

#include "model/transnormer.h"
#include "tokenizer/tokenizer.h"

/* Dies (status 1, the message prefixed "tnllm COMMAND:") with err, the
 * failure to read the model at dir, or, when dir is a run directory or a
 * file, with what to pass to -m instead. */
void model_dir_die(const char *command, const char *dir, const TnError *err) __attribute__((noreturn));
/* Loads the model at dir (tn_model_load); dies as model_dir_die. */
void model_dir_load(TnModel *m, const char *dir, const char *command);
/* The tokenizer of the model m read from dir (tn_tokenizer_for_model),
 * with a warning on stderr naming command when m's vocabulary is larger
 * than the tokenizer's; dies when it cannot be read. */
TnTokenizer *model_dir_tokenizer(const TnModel *m, const char *dir, const char *command);

#endif
