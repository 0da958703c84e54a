#include "data/loader.h"

#include <stdlib.h>
#include <string.h>

/* Draws this epoch's order from the generator. */
static void start_epoch(TnLoader *l) {
    l->state.epoch_rng = l->rng;
    l->state.cursor = 0;
    for (size_t i = 0; i < l->n_windows; i++) l->order[i] = i;
    for (size_t i = l->n_windows - 1; i > 0; i--) {
        size_t j = (size_t)tn_rng_below(&l->rng, i + 1), t = l->order[i];
        l->order[i] = l->order[j];
        l->order[j] = t;
    }
}

int tn_loader_init(TnLoader *l, const uint32_t *tokens, size_t n_tokens, int seq_len, uint64_t seed,
                   const char *name, TnError *err) {
    memset(l, 0, sizeof *l);
    if (n_tokens < (size_t)seq_len + 1)
        return tn_fail(err, "%s: %zu tokens are fewer than one window of the context %d + 1; use a shorter --ctx or "
                            "more data", name, n_tokens, seq_len);
    l->tokens = tokens;
    l->n_tokens = n_tokens;
    l->seq_len = seq_len;
    l->n_windows = (n_tokens - 1) / (size_t)seq_len;
    l->order = tn_malloc(l->n_windows * sizeof *l->order);
    tn_rng_seed(&l->rng, seed, 0x10ade7);
    start_epoch(l);
    return 0;
}

void tn_loader_free(TnLoader *l) {
    free(l->order);
    memset(l, 0, sizeof *l);
}

void tn_loader_next(TnLoader *l, int batch, int32_t *inputs, int32_t *targets) {
    int T = l->seq_len;
    for (int b = 0; b < batch; b++) {
        if (l->state.cursor == l->n_windows) {
            l->state.epoch++;
            start_epoch(l);
        }
        const uint32_t *w = l->tokens + l->order[l->state.cursor++] * (size_t)T;
        for (int t = 0; t < T; t++) {
            inputs[b * T + t] = (int32_t)w[t];
            targets[b * T + t] = (int32_t)w[t + 1];
        }
    }
}

int tn_loader_restore(TnLoader *l, const TnLoaderState *state, TnError *err) {
    if (state->cursor > l->n_windows)
        return tn_fail(err, "saved data position %llu is beyond the %zu windows of the data (different data?)",
                       (unsigned long long)state->cursor, l->n_windows);
    l->rng = state->epoch_rng;
    start_epoch(l);
    l->state.epoch = state->epoch;
    l->state.cursor = state->cursor;
    return 0;
}
