/* loader.h: batches of training windows over a token stream.
 *
 * The stream (borrowed, not copied) is cut into windows of seq_len + 1
 * tokens starting at multiples of seq_len: window i covers tokens
 * [i T, i T + T]; its first T tokens are the inputs and its last T the
 * targets (next-token prediction, every position scored). Each epoch
 * visits all windows once in an order drawn by a seeded generator
 * (Fisher-Yates). (Validation reads its split in order through
 * infer/perplexity.h instead.)
 *
 * The position (epoch, cursor) and the generator's state at the start of
 * the epoch are the loader's whole state: TnLoaderState saves it and
 * tn_loader_restore redraws the same permutation, so a resumed run reads
 * the same batches as an uninterrupted one.
 */
#ifndef TN_DATA_LOADER_H
#define TN_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/rng.h"

typedef struct TnLoaderState {
    uint64_t epoch, cursor; /* cursor: windows of this epoch already read */
    TnRng epoch_rng;        /* generator state before this epoch's shuffle */
} TnLoaderState;

typedef struct TnLoader {
    const uint32_t *tokens; /* borrowed */
    size_t n_tokens, n_windows;
    int seq_len;
    size_t *order;          /* (n_windows) this epoch's window order, owned */
    TnRng rng;
    TnLoaderState state;
} TnLoader;

/* Fails (naming `name`) when the stream holds fewer than seq_len + 1 tokens. */
int tn_loader_init(TnLoader *l, const uint32_t *tokens, size_t n_tokens, int seq_len, uint64_t seed,
                   const char *name, TnError *err);
void tn_loader_free(TnLoader *l);
/* Fills inputs and targets (batch x seq_len each) with the next `batch`
 * windows, moving to the next epoch (reshuffled) when one ends. */
void tn_loader_next(TnLoader *l, int batch, int32_t *inputs, int32_t *targets);
/* Puts the loader where `state` says (from tn_loader_init's loader over the
 * same stream); fails if the cursor is beyond this stream's windows. */
int tn_loader_restore(TnLoader *l, const TnLoaderState *state, TnError *err);

#endif
