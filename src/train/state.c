#include "train/state.h"

#include <errno.h>
#include <stdio.h>
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

int tn_train_state_writer_open(TnTrainStateWriter *w, const char *path, const TnTrainState *state, size_t n_params,
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
    memset(w, 0, sizeof *w);
    w->sum = TN_FNV_OFFSET;
    w->remaining = 2 * n_params;
    if (tn_atomic_open(&w->file, path, err)) return -1;
    if (write_summed(&w->file, &h, sizeof h, &w->sum, err)) return -1; /* the temporary file is gone */
    w->open = 1;
    return 0;
}

int tn_train_state_writer_write(TnTrainStateWriter *w, const float *moments, size_t count, TnError *err) {
    if (count > w->remaining) {
        tn_train_state_writer_abort(w);
        return tn_fail(err, "%s: more moments than the model's", w->file.path);
    }
    w->remaining -= count;
    if (write_summed(&w->file, moments, count * sizeof *moments, &w->sum, err)) {
        w->open = 0;
        return -1;
    }
    return 0;
}

int tn_train_state_writer_commit(TnTrainStateWriter *w, TnError *err) {
    if (w->remaining) {
        tn_train_state_writer_abort(w);
        return tn_fail(err, "%s: %zu moments never written", w->file.path, w->remaining);
    }
    w->open = 0;
    if (tn_atomic_write(&w->file, &w->sum, sizeof w->sum, err)) return -1;
    return tn_atomic_commit(&w->file, err);
}

void tn_train_state_writer_abort(TnTrainStateWriter *w) {
    if (w->open) tn_atomic_abort(&w->file);
    w->open = 0;
}

int tn_train_state_save(const char *path, const TnTrainState *state, const float *m, const float *v, size_t n_params,
                        TnError *err) {
    TnTrainStateWriter w;
    if (tn_train_state_writer_open(&w, path, state, n_params, err) ||
        tn_train_state_writer_write(&w, m, n_params, err) || tn_train_state_writer_write(&w, v, n_params, err))
        return -1;
    return tn_train_state_writer_commit(&w, err);
}

int tn_train_state_load(const char *path, TnTrainState *state, float *m, float *v, size_t n_params, TnError *err) {
    return tn_train_state_load_range(path, state, m, v, n_params, 0, n_params, err);
}

/* Copies the runs' elements found in chunk, the file's moment floats
 * [at, at + count) (m's n_params, then v's). The runs increase in from
 * (params.h), so those that end before the chunk are passed for good:
 * next[k] is the first run of moment k still to finish, and each chunk
 * looks at its own runs alone rather than all of them. */
static void take_moments(const float *chunk, size_t at, size_t count, size_t n_params, const TnRun *runs,
                         size_t n_runs, size_t next[2], float *m, float *v) {
    float *moments[2] = {m, v};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = next[k]; i < n_runs; i++) {
            size_t from = k * n_params + runs[i].from, to = from + runs[i].count;
            if (from >= at + count) break;
            size_t first = from > at ? from : at, last = to < at + count ? to : at + count;
            if (first < last)
                memcpy(moments[k] + runs[i].to + (first - from), chunk + (first - at), (last - first) * sizeof *chunk);
            if (to <= at + count) next[k] = i + 1;
        }
}

/* Reads the moments in chunks, folding every byte into the checksum and
 * keeping the runs, then checks the stored checksum. */
static int read_moments(FILE *fp, const char *path, uint64_t *sum, float *m, float *v, size_t n_params,
                        const TnRun *runs, size_t n_runs, TnError *err) {
    size_t chunk_floats = 1u << 18, total = 2 * n_params;
    float *chunk = tn_malloc(chunk_floats * sizeof *chunk);
    size_t next[2] = {0, 0};
    int rc = 0;
    for (size_t at = 0; at < total && !rc; at += chunk_floats) {
        size_t count = total - at < chunk_floats ? total - at : chunk_floats;
        if (fread(chunk, sizeof *chunk, count, fp) != count) {
            rc = tn_fail(err, "%s: short read (truncated?)", path);
            break;
        }
        *sum = tn_fnv1a(*sum, chunk, count * sizeof *chunk);
        take_moments(chunk, at, count, n_params, runs, n_runs, next, m, v);
    }
    free(chunk);
    uint64_t stored;
    if (!rc && (fread(&stored, sizeof stored, 1, fp) != 1 || stored != *sum))
        rc = tn_fail(err, "%s: checksum mismatch (corrupted file)", path);
    return rc;
}

int tn_train_state_load_range(const char *path, TnTrainState *state, float *m, float *v, size_t n_params,
                              size_t begin, size_t end, TnError *err) {
    TnRun run = {.from = begin, .to = 0, .count = end - begin};
    return tn_train_state_load_runs(path, state, m, v, n_params, &run, 1, err);
}

int tn_train_state_load_runs(const char *path, TnTrainState *state, float *m, float *v, size_t n_params,
                             const TnRun *runs, size_t n_runs, TnError *err) {
    uint64_t size;
    FILE *fp = tn_open_regular(path, &size, err);
    if (!fp) return -1;
    StateHeader h;
    size_t want = sizeof h + 2 * n_params * sizeof(float) + sizeof(uint64_t);
    uint64_t sum = TN_FNV_OFFSET;
    int rc = 0;
    if (size < sizeof h || fread(&h, sizeof h, 1, fp) != 1 || memcmp(h.magic, state_magic, sizeof state_magic) != 0)
        rc = tn_fail(err, "%s: not a tnllm training-state file", path);
    else if (h.version != TN_TRAIN_STATE_VERSION)
        rc = tn_fail(err, "%s: training-state version %u, this build reads %d", path, h.version,
                     TN_TRAIN_STATE_VERSION);
    else if (h.n_params != n_params)
        rc = tn_fail(err, "%s: holds moments for %llu parameters, the model has %zu", path,
                     (unsigned long long)h.n_params, n_params);
    else if (size != want)
        rc = tn_fail(err, "%s: %zu bytes, expected %zu (truncated?)", path, (size_t)size, want);
    else
        sum = tn_fnv1a(sum, &h, sizeof h), rc = read_moments(fp, path, &sum, m, v, n_params, runs, n_runs, err);
    fclose(fp);
    if (rc) return -1;
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
    return 0;
}
