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
    uint32_t version, block_floats; /* version 1: block_floats 0 */
    uint64_t step, tokens_seen, seq_len, micro_batch, accum_steps, data_hash;
    uint64_t loader_epoch, loader_cursor, loader_rng[4], n_params;
    double elapsed;
} StateHeader;

uint64_t tn_tokens_hash(const uint32_t *tokens, size_t n) {
    return tn_fnv1a(TN_FNV_OFFSET, tokens, n * sizeof *tokens);
}

static size_t blocks_of(size_t floats, size_t block_floats) { return (floats + block_floats - 1) / block_floats; }

int tn_train_state_writer_open(TnTrainStateWriter *w, const char *path, const TnTrainState *state, size_t n_params,
                               size_t block_floats, TnError *err) {
    memset(w, 0, sizeof *w);
    if (block_floats < 1 || block_floats > UINT32_MAX)
        return tn_fail(err, "%s: a checksum block of %zu floats (1 to 2^32 - 1)", path, block_floats);
    StateHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, state_magic, sizeof h.magic);
    h.version = TN_TRAIN_STATE_VERSION;
    h.block_floats = (uint32_t)block_floats;
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
    w->header_sum = tn_fnv1a(TN_FNV_OFFSET, &h, sizeof h);
    w->block_floats = block_floats;
    w->total = 2 * n_params;
    w->n_blocks = blocks_of(w->total, block_floats);
    w->block_sums = tn_malloc((w->n_blocks ? w->n_blocks : 1) * sizeof *w->block_sums);
    for (size_t b = 0; b < w->n_blocks; b++) w->block_sums[b] = TN_FNV_OFFSET;
    if (tn_atomic_open(&w->file, path, err) || tn_atomic_write(&w->file, &h, sizeof h, err)) {
        free(w->block_sums); /* the temporary file is gone */
        w->block_sums = NULL;
        return -1;
    }
    w->open = 1;
    return 0;
}

int tn_train_state_writer_write(TnTrainStateWriter *w, const float *moments, size_t count, TnError *err) {
    if (!w->open) return tn_fail(err, "%s: the training-state writer was closed by an earlier failure", w->file.path);
    if (count > w->total - w->written) {
        tn_train_state_writer_abort(w);
        return tn_fail(err, "%s: more moments than the model's", w->file.path);
    }
    if (tn_atomic_write(&w->file, moments, count * sizeof *moments, err)) {
        w->open = 0; /* the temporary file is gone */
        tn_train_state_writer_abort(w);
        return -1;
    }
    while (count > 0) { /* each block's sum over its floats, across calls */
        size_t b = w->written / w->block_floats, room = (b + 1) * w->block_floats - w->written;
        size_t take = count < room ? count : room;
        w->block_sums[b] = tn_fnv1a(w->block_sums[b], moments, take * sizeof *moments);
        w->written += take;
        moments += take;
        count -= take;
    }
    return 0;
}

int tn_train_state_writer_commit(TnTrainStateWriter *w, TnError *err) {
    if (w->written != w->total) {
        size_t missing = w->total - w->written;
        tn_train_state_writer_abort(w);
        return tn_fail(err, "%s: %zu moments never written", w->file.path, missing);
    }
    size_t table = w->n_blocks * sizeof *w->block_sums;
    uint64_t sum = tn_fnv1a(w->header_sum, w->block_sums, table);
    w->open = 0;
    int rc = tn_atomic_write(&w->file, w->block_sums, table, err) || tn_atomic_write(&w->file, &sum, sizeof sum, err) ||
             tn_atomic_commit(&w->file, err);
    free(w->block_sums);
    w->block_sums = NULL;
    return rc ? -1 : 0;
}

void tn_train_state_writer_abort(TnTrainStateWriter *w) {
    if (w->open) tn_atomic_abort(&w->file);
    w->open = 0;
    free(w->block_sums);
    w->block_sums = NULL;
}

int tn_train_state_save(const char *path, const TnTrainState *state, const float *m, const float *v, size_t n_params,
                        size_t block_floats, TnError *err) {
    TnTrainStateWriter w;
    if (tn_train_state_writer_open(&w, path, state, n_params, block_floats, err) ||
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

/* Version 1: reads the moments in chunks, folding every byte into the
 * whole file's checksum and keeping the runs, then checks it. */
static int read_whole(FILE *fp, const char *path, const StateHeader *h, float *m, float *v, size_t n_params,
                      const TnRun *runs, size_t n_runs, TnError *err) {
    size_t chunk_floats = 1u << 18, total = 2 * n_params;
    float *chunk = tn_malloc(chunk_floats * sizeof *chunk);
    size_t next[2] = {0, 0};
    uint64_t sum = tn_fnv1a(TN_FNV_OFFSET, h, sizeof *h);
    int rc = 0;
    for (size_t at = 0; at < total && !rc; at += chunk_floats) {
        size_t count = total - at < chunk_floats ? total - at : chunk_floats;
        if (fread(chunk, sizeof *chunk, count, fp) != count) {
            rc = tn_fail(err, "%s: short read (truncated?)", path);
            break;
        }
        sum = tn_fnv1a(sum, chunk, count * sizeof *chunk);
        take_moments(chunk, at, count, n_params, runs, n_runs, next, m, v);
    }
    free(chunk);
    uint64_t stored;
    if (!rc && (fread(&stored, sizeof stored, 1, fp) != 1 || stored != sum))
        rc = tn_fail(err, "%s: checksum mismatch (corrupted file)", path);
    return rc;
}

/* Marks in needed[] the blocks of block_floats moment floats that hold
 * the runs' elements of m and of v. */
static void mark_blocks(unsigned char *needed, size_t block_floats, size_t n_params, const TnRun *runs,
                        size_t n_runs) {
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < n_runs; i++) {
            if (!runs[i].count) continue;
            size_t first = k * n_params + runs[i].from, last = first + runs[i].count - 1;
            for (size_t b = first / block_floats; b <= last / block_floats; b++) needed[b] = 1;
        }
}

/* Version 2: checks the header and the blocks' sums against the last
 * checksum, then reads the blocks holding the runs alone, each checked
 * against its sum. */
static int read_blocks(FILE *fp, const char *path, const StateHeader *h, float *m, float *v, size_t n_params,
                       const TnRun *runs, size_t n_runs, TnError *err) {
    size_t B = h->block_floats, total = 2 * n_params, n_blocks = blocks_of(total, B);
    off_t moments_at = (off_t)sizeof *h;
    uint64_t *sums = tn_malloc((n_blocks + 1) * sizeof *sums), stored;
    int rc = 0;
    if (fseeko(fp, moments_at + (off_t)(total * sizeof(float)), SEEK_SET) != 0 ||
        fread(sums, sizeof *sums, n_blocks, fp) != n_blocks || fread(&stored, sizeof stored, 1, fp) != 1)
        rc = tn_fail(err, "%s: short read (truncated?)", path);
    else if (tn_fnv1a(tn_fnv1a(TN_FNV_OFFSET, h, sizeof *h), sums, n_blocks * sizeof *sums) != stored)
        rc = tn_fail(err, "%s: checksum mismatch in the header or the block checksums (corrupted file)", path);
    if (rc) {
        free(sums);
        return rc;
    }
    unsigned char *needed = tn_calloc(n_blocks ? n_blocks : 1, 1);
    mark_blocks(needed, B, n_params, runs, n_runs);
    float *chunk = tn_malloc((B < total ? B : total ? total : 1) * sizeof *chunk); /* one block at a time */
    size_t next[2] = {0, 0};
    for (size_t b = 0; b < n_blocks && !rc; b++) {
        if (!needed[b]) continue;
        size_t at = b * B, count = total - at < B ? total - at : B;
        if (fseeko(fp, moments_at + (off_t)(at * sizeof(float)), SEEK_SET) != 0 ||
            fread(chunk, sizeof *chunk, count, fp) != count)
            rc = tn_fail(err, "%s: short read (truncated?)", path);
        else if (tn_fnv1a(TN_FNV_OFFSET, chunk, count * sizeof *chunk) != sums[b])
            rc = tn_fail(err, "%s: checksum mismatch in the moments' block %zu of %zu (corrupted file)", path, b + 1,
                         n_blocks);
        else
            take_moments(chunk, at, count, n_params, runs, n_runs, next, m, v);
    }
    free(chunk);
    free(needed);
    free(sums);
    return rc;
}

int tn_train_state_load_range(const char *path, TnTrainState *state, float *m, float *v, size_t n_params,
                              size_t begin, size_t end, TnError *err) {
    TnRun run = {.from = begin, .to = 0, .count = end - begin};
    return tn_train_state_load_runs(path, state, m, v, n_params, &run, 1, err);
}

/* The file's size for n_params moments with header h's version and block. */
static uint64_t expected_size(const StateHeader *h, size_t n_params) {
    uint64_t moments = 2 * (uint64_t)n_params, sums = h->version == 1 ? 0 : blocks_of(moments, h->block_floats);
    return sizeof *h + moments * sizeof(float) + (sums + 1) * sizeof(uint64_t);
}

int tn_train_state_load_runs(const char *path, TnTrainState *state, float *m, float *v, size_t n_params,
                             const TnRun *runs, size_t n_runs, TnError *err) {
    uint64_t size;
    FILE *fp = tn_open_regular(path, &size, err);
    if (!fp) return -1;
    StateHeader h;
    int rc = 0;
    if (size < sizeof h || fread(&h, sizeof h, 1, fp) != 1 || memcmp(h.magic, state_magic, sizeof state_magic) != 0)
        rc = tn_fail(err, "%s: not a tnllm training-state file", path);
    else if (h.version != 1 && h.version != TN_TRAIN_STATE_VERSION)
        rc = tn_fail(err, "%s: training-state version %u, this build reads 1 and %d", path, h.version,
                     TN_TRAIN_STATE_VERSION);
    else if (h.version != 1 && h.block_floats == 0)
        rc = tn_fail(err, "%s: a checksum block of 0 floats (corrupted file)", path);
    else if (h.n_params != n_params)
        rc = tn_fail(err, "%s: holds moments for %llu parameters, the model has %zu", path,
                     (unsigned long long)h.n_params, n_params);
    else if (size != expected_size(&h, n_params))
        rc = tn_fail(err, "%s: %llu bytes, expected %llu (truncated?)", path, (unsigned long long)size,
                     (unsigned long long)expected_size(&h, n_params));
    else if (h.version == 1)
        rc = read_whole(fp, path, &h, m, v, n_params, runs, n_runs, err);
    else
        rc = read_blocks(fp, path, &h, m, v, n_params, runs, n_runs, err);
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
