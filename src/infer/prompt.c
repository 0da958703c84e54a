#include "infer/prompt.h"

#include <stdlib.h>
#include <string.h>

int tn_prompt_tokens(const TnTokenizer *tok, const char *text, size_t len, int add_bos, int vocab_size,
                     int32_t **ids, size_t *n_ids, TnError *err) {
    *ids = NULL;
    *n_ids = 0;
    if (len == 0 && !add_bos) return tn_fail(err, "the prompt is empty and no <s> is added: nothing to start from");
    int32_t *text_ids;
    size_t n_text;
    if (tn_tokenizer_encode(tok, text, len, &text_ids, &n_text, err)) return -1;
    size_t n = n_text + (add_bos ? 1 : 0);
    int32_t *out = tn_malloc((n ? n : 1) * sizeof *out);
    if (add_bos) out[0] = TN_TOKEN_BOS;
    memcpy(out + (add_bos ? 1 : 0), text_ids, n_text * sizeof *out);
    free(text_ids);
    for (size_t i = 0; i < n; i++)
        if (out[i] < 0 || out[i] >= vocab_size) {
            int32_t bad = out[i];
            free(out);
            return tn_fail(err,
                           "prompt token %zu has id %d, outside the model's vocabulary [0, %d): the tokenizer does not "
                           "belong to this model",
                           i, bad, vocab_size);
        }
    *ids = out;
    *n_ids = n;
    return 0;
}
