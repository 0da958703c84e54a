/* prompt.h: the token ids a model is fed for a text (generation prompts,
 * interactive turns, perplexity of text files). */
#ifndef TN_INFER_PROMPT_H
#define TN_INFER_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* The token ids of a prompt: <s> first when add_bos, then the text's
 * tokens. Any bytes are accepted (invalid UTF-8 goes through the byte
 * fallback); an empty text gives <s> alone, or fails without add_bos since
 * nothing would predict the first token. Fails when a token id is outside
 * [0, vocab_size) (a tokenizer that does not belong to the model). *ids is
 * allocated (the caller frees). */
int tn_prompt_tokens(const TnTokenizer *tok, const char *text, size_t len, int add_bos, int vocab_size,
                     int32_t **ids, size_t *n_ids, TnError *err);

#endif
