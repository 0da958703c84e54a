/* state.h: the training-state file beside a checkpoint's HF model directory.
 *
 * Everything a run needs, besides the weights, to continue bit-identically
 * (SPEC section 4): the step, tokens seen, elapsed time, the batch geometry
 * and a hash of the training tokens (a resume with other data or another
 * batch shape is refused), the data loader's position and generator state,
 * and the AdamW moments m and v (the parameters' layout, float32).
 *
 * Format (little-endian), version 2:
 *   "TNSTATE\0" magic, uint32 version, uint32 block_floats B,
 *   uint64 step, tokens_seen, seq_len, micro_batch, accum_steps, data_hash,
 *          loader epoch, loader cursor, loader rng[4], n_params,
 *   float64 elapsed_seconds,
 *   float32 m[n_params], float32 v[n_params],
 *   uint64 FNV-1a of each block of B floats of the moments (m then v, the
 *          last block shorter), ceil(2 n_params / B) of them,
 *   uint64 FNV-1a of the header's bytes and then those sums'.
 * A ZeRO rank reads the blocks holding its range alone, each checked
 * against its sum (the job's ranks together check every block). Version 1
 * (the same header with 0 for B, the moments, then one FNV-1a of every
 * byte before it) is still read, whole. Written atomically (fileio.h);
 * read back only if magic, version, size, n_params and the checksums of
 * what is read agree.
 */
#ifndef TN_TRAIN_STATE_H
#define TN_TRAIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "data/loader.h"
#include "model/params.h"
#include "util/error.h"
#include "util/fileio.h"

#define TN_TRAIN_STATE_VERSION 2
#define TN_TRAIN_STATE_FILE "training_state.bin"
/* The trainer's block: 16 MiB of moments a checksum. */
#define TN_TRAIN_STATE_BLOCK_FLOATS ((size_t)1 << 22)

typedef struct TnTrainState {
    long long step;        /* optimizer steps completed */
    long long tokens_seen; /* training tokens consumed */
    double elapsed;        /* seconds spent training, over all sessions */
    int seq_len, micro_batch, accum_steps;
    uint64_t data_hash;    /* tn_tokens_hash of the training stream */
    TnLoaderState loader;
} TnTrainState;

/* FNV-1a 64 over the token ids: the identity of a training stream. */
uint64_t tn_tokens_hash(const uint32_t *tokens, size_t n);

/* Writes state and the moments (n_params floats each) to path, a checksum
 * every block_floats (1 to 2^32 - 1; TN_TRAIN_STATE_BLOCK_FLOATS) of them. */
int tn_train_state_save(const char *path, const TnTrainState *state, const float *m, const float *v, size_t n_params,
                        size_t block_floats, TnError *err);
/* tn_train_state_save in pieces, for moments that are never whole in
 * memory (a ZeRO rank 0 gathering one part at a time): open writes the
 * header, write appends the next count floats (m's n_params, then v's),
 * commit checks that all came and writes the checksums. A failed call
 * leaves no file and closes the writer; abort drops an open one. */
typedef struct TnTrainStateWriter {
    TnAtomicFile file;
    uint64_t header_sum; /* FNV-1a of the header */
    uint64_t *block_sums; /* one per block, the current one running */
    size_t block_floats, n_blocks, written; /* written: moment floats so far */
    size_t total;        /* moment floats due, 2 n_params */
    int open;
} TnTrainStateWriter;

int tn_train_state_writer_open(TnTrainStateWriter *w, const char *path, const TnTrainState *state, size_t n_params,
                               size_t block_floats, TnError *err);
int tn_train_state_writer_write(TnTrainStateWriter *w, const float *moments, size_t count, TnError *err);
int tn_train_state_writer_commit(TnTrainStateWriter *w, TnError *err);
void tn_train_state_writer_abort(TnTrainStateWriter *w);

/* Reads path into state, m and v (n_params floats each, caller-owned);
 * fails with the reason on a foreign, truncated, corrupted or mismatched
 * file, leaving the outputs unspecified. A corrupted block of moments is
 * found by the reads that need it (every one here). */
int tn_train_state_load(const char *path, TnTrainState *state, float *m, float *v, size_t n_params, TnError *err);
/* The same keeping the moments' elements [begin, end) alone (m[0] and
 * v[0] are element begin's): only the blocks holding them are read (a
 * version 1 file: all of it), each checked, one block (or chunk) in
 * memory at a time (a ZeRO shard). */
int tn_train_state_load_range(const char *path, TnTrainState *state, float *m, float *v, size_t n_params,
                              size_t begin, size_t end, TnError *err);
/* The same for runs of the moments (params.h: elements run.from .. into
 * m[run.to ..] and v[run.to ..]): a rank's range of its tensor-parallel
 * part (dist/tensor_parallel.h tn_tp_runs). */
int tn_train_state_load_runs(const char *path, TnTrainState *state, float *m, float *v, size_t n_params,
                             const TnRun *runs, size_t n_runs, TnError *err);

#endif
