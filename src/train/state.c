#include "train/state.h"

#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/hash.h"

static const char state_magic[8] = "TNSTATE";

/* The fixed-size part of the file, in file order. */
typedef struct StateHeader {
    char magic[8];
    uint32_t version, reserved;
    uint64_t step, tokens_seen, seq_len, micro_batch, accum_steps, data_hash;
    uint64_t loader_epoch, loader_cursor, loader_rng[4], n_params;
    double elapsed;
} StateHeader;

uint64_t tn_tokens_hash(const uint32_t *tokens, size_t n) {
    return tn_fnv1a(TN_FNV_OFFSET, tokens, n * sizeof *tokens);
}

/* Writes n bytes and folds them into the running checksum. */
static int write_summed(TnAtomicFile *f, const void *data, size_t n, uint64_t *sum, TnError *err) {
    *sum = tn_fnv1a(*sum, data, n);
    return tn_atomic_write(f, data, n, err);
}

int tn_train_state_save(const char *path, const TnTrainState *state, const float *m, const float *v, size_t n_params,
                        TnError *err) {
    StateHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, state_magic, sizeof h.magic);
    h.version = TN_TRAIN_STATE_VERSION;
    h.step = (uint64_t)state->step;
    h.tokens_seen = (uint64_t)state->tokens_seen;
    h.seq_len = (uint64_t)state->seq_len;
    h.micro_batch = (uint64_t)state->micro_batch;
    h.accum_steps = (uint64_t)state->accum_steps;
    h.data_hash = state->data_hash;
    h.loader_epoch = state->loader.epoch;
    h.loader_cursor = state->loader.cursor;
    memcpy(h.loader_rng, state->loader.epoch_rng.s, sizeof h.loader_rng);
    h.n_params = n_params;
    h.elapsed = state->elapsed;
    TnAtomicFile f;
    uint64_t sum = TN_FNV_OFFSET;
    if (tn_atomic_open(&f, path, err)) return -1;
    if (write_summed(&f, &h, sizeof h, &sum, err) || write_summed(&f, m, n_params * sizeof *m, &sum, err) ||
        write_summed(&f, v, n_params * sizeof *v, &sum, err) || tn_atomic_write(&f, &sum, sizeof sum, err)) {
        tn_atomic_abort(&f);
        return -1;
    }
    return tn_atomic_commit(&f, err);
}

int tn_train_state_load(const char *path, TnTrainState *state, float *m, float *v, size_t n_params, TnError *err) {
    char *data;
    size_t size;
    if (tn_read_file(path, &data, &size, err)) return -1;
    StateHeader h;
    size_t moments = n_params * sizeof(float), want = sizeof h + 2 * moments + sizeof(uint64_t);
    int rc = 0;
    if (size < sizeof h || memcmp(data, state_magic, sizeof state_magic) != 0) {
        rc = tn_fail(err, "%s: not a tnllm training-state file", path);
    } else {
        memcpy(&h, data, sizeof h);
        uint64_t stored;
        if (h.version != TN_TRAIN_STATE_VERSION)
            rc = tn_fail(err, "%s: training-state version %u, this build reads %d", path, h.version,
                         TN_TRAIN_STATE_VERSION);
        else if (h.n_params != n_params)
            rc = tn_fail(err, "%s: holds moments for %llu parameters, the model has %zu", path,
                         (unsigned long long)h.n_params, n_params);
        else if (size != want)
            rc = tn_fail(err, "%s: %zu bytes, expected %zu (truncated?)", path, size, want);
        else if (memcpy(&stored, data + size - sizeof stored, sizeof stored),
                 stored != tn_fnv1a(TN_FNV_OFFSET, data, size - sizeof stored))
            rc = tn_fail(err, "%s: checksum mismatch (corrupted file)", path);
    }
    if (!rc) {
        state->step = (long long)h.step;
        state->tokens_seen = (long long)h.tokens_seen;
        state->elapsed = h.elapsed;
        state->seq_len = (int)h.seq_len;
        state->micro_batch = (int)h.micro_batch;
        state->accum_steps = (int)h.accum_steps;
        state->data_hash = h.data_hash;
        state->loader.epoch = h.loader_epoch;
        state->loader.cursor = h.loader_cursor;
        memcpy(state->loader.epoch_rng.s, h.loader_rng, sizeof h.loader_rng);
        memcpy(m, data + sizeof h, moments);
        memcpy(v, data + sizeof h + moments, moments);
    }
    free(data);
    return rc;
}
