/* golden.h: the golden case of the official HF code (SPEC section 1), as
 * the tests that compare against it need it: the model of golden_dir(),
 * its golden.safetensors open, and the batch built the way HF's causal-LM
 * loss reads input_ids (the logits at t predict token t + 1; the last
 * position of each row is ignored, -100). */
#ifndef TN_TESTS_GOLDEN_H
#define TN_TESTS_GOLDEN_H

#include <stdint.h>

#include "model/safetensors.h"
#include "model/transnormer.h"

typedef struct GoldenCase {
    TnModel model;
    TnStFile tensors;       /* golden.safetensors */
    int batch, seq_len;
    int32_t *tokens, *targets; /* (batch, seq_len) */
    int scored;             /* targets that are not -100 */
} GoldenCase;

/* Returns 0, or -1 after recording a failed CHECK (nothing left open). */
int golden_open(GoldenCase *c);
void golden_close(GoldenCase *c);

#endif
