/* test_zero: what a ZeRO rank holds (train/trainer.h, dist/plan.h,
 * model/params.h tn_params_init_range).
 *
 * 1. A shard initialised on its own equals the same range of the whole
 *    model's initialisation, bit for bit, for fresh random ranges (inside
 *    one tensor, across tensors, the embedding's padding row, theta, the
 *    norms' gains) of a tied and an untied model and of one whose
 *    embedding spans three blocks of draws; and the whole on one thread
 *    equals it on all: a ZeRO-3 rank never builds the whole model to take
 *    its shard.
 * 2. Under `mpirun -np 2` and `-np 3` (this binary starts itself; shards
 *    of unequal length), tn_train_run with ZeRO 0..3 reports the bytes of
 *    the buffers it allocated (TnTrainMemory, the memory line's figures),
 *    which must be the planner's elements (tn_plan_elements, the same
 *    layout) times 4 bytes: the gather buffer and the backward's gradient
 *    buffers exactly, the shards of parameters, gradients and moments to
 *    the rounding of a shard's length (at most one element each, so 4
 *    bytes, 8 for the two moments). The gradients of ZeRO-2/3 must be a
 *    shard, not the whole buffer: the test fails on the old layout.
 * 3. Checkpoints stream from the shards and are read back by range: a
 *    model written through TnCheckpointWriter in random pieces (bf16 in
 *    several files, float32 in one) gives the same bytes as
 *    tn_checkpoint_save of the whole buffer, and random ranges read alone
 *    (tn_checkpoint_load_range) equal those of the whole load.
 * 4. The same for the training-state file (TnTrainStateWriter,
 *    tn_train_state_load_range) in blocks of 700 floats, a checksum each:
 *    a byte flipped in a block read is refused, one in a block not read
 *    is left to the rank that reads it; a flipped byte in the header or
 *    the blocks' checksums is refused by every read; a version 1 file
 *    (one checksum of the whole file) is still read.
 * 5. With tensor parallelism a rank's range of its part is runs of the
 *    whole buffer (tn_tp_runs): drawn (tn_params_init_runs), read from a
 *    checkpoint (TnCheckpointReader) or from a state file
 *    (tn_train_state_load_runs), it equals the range of the part sliced
 *    from the whole (tn_tp_slice), for 2 and 4 parts, fresh random ranges.
 * mpirun is required (CI installs OpenMPI): without it the test fails.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/plan.h"
#include "dist/tensor_parallel.h"
#include "model/checkpoint.h"
#include "test.h"
#include "train/state.h"
#include "train/trainer.h"
#include "train_runs.h"
#include "util/fileio.h"
#include "util/hash.h"
#include "util/rng.h"

/* A random range of n elements (the whole buffer on trial 0, to check that too). */
static TnRange random_range(TnRng *rng, size_t n, int trial) {
    if (trial == 0) return (TnRange){0, n};
    size_t a = tn_rng_below(rng, n), b = tn_rng_below(rng, n + 1);
    return (TnRange){a < b ? a : b, a < b ? b : a + 1};
}

/* 1: ranges of a model's initialisation against the whole. */
static void check_init_ranges(const TnConfig *cfg, uint64_t seed) {
    TnParamLayout layout;
    tn_param_layout_init(&layout, cfg);
    size_t n = layout.total;
    float *whole = tn_malloc(n * sizeof *whole), *part = tn_malloc(n * sizeof *part);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    tn_params_init(part, &layout, cfg, seed);
    omp_set_num_threads(3); /* more threads than blocks of the small models' tensors, whatever the cores */
    tn_params_init(whole, &layout, cfg, seed);
    omp_set_num_threads(threads);
    CHECK(memcmp(part, whole, n * sizeof *part) == 0, "init on one thread differs from init on three");
    TnRng rng;
    tn_rng_seed(&rng, seed, 77);
    for (int trial = 0; trial < 20; trial++) {
        TnRange range = random_range(&rng, n, trial);
        tn_params_init_range(part, &layout, cfg, seed, range.begin, range.end);
        CHECK(memcmp(part, whole + range.begin, (range.end - range.begin) * sizeof *part) == 0,
              "init of [%zu, %zu) of %zu (tied %d) differs from the whole model's", range.begin, range.end, n,
              cfg->tie_word_embeddings);
    }
    free(whole);
    free(part);
    tn_param_layout_free(&layout);
}

/* The embedding of cfg (over 2^20 elements) drawn in blocks: the second
 * block's values are not the first's again (its stream is its own), and
 * both are N(0, init_std^2): sample standard deviations within 1% (2^20
 * draws: a standard error of 0.07%). */
static void check_init_blocks(const TnConfig *cfg, uint64_t seed) {
    TnParamLayout layout;
    tn_param_layout_init(&layout, cfg);
    const size_t block = (size_t)1 << 20;
    const TnTensorInfo *embed = tn_param_tensor_at(&layout, 0);
    CHECK(embed->kind == TN_PARAM_EMBED && embed->numel >= 2 * block, "the test needs an embedding of two blocks");
    float *values = tn_malloc(2 * block * sizeof *values);
    tn_params_init_range(values, &layout, cfg, seed, embed->offset, embed->offset + 2 * block);
    CHECK(memcmp(values, values + block, 1024 * sizeof *values) != 0, "block 1 of the embedding repeats block 0");
    size_t pad_begin = (size_t)cfg->pad_token_id * cfg->dim, pad_end = pad_begin + cfg->dim;
    for (int b = 0; b < 2; b++) {
        double squares = 0;
        size_t count = 0;
        for (size_t j = b * block; j < (b + 1) * block; j++) {
            if (j >= pad_begin && j < pad_end) continue;
            squares += (double)values[j] * values[j];
            count++;
        }
        double std = sqrt(squares / count);
        CHECK(fabs(std / cfg->init_std - 1) < 0.01, "block %d of the embedding: std %.5f, init_std %.5f", b, std,
              cfg->init_std);
    }
    free(values);
    tn_param_layout_free(&layout);
}

/* Whether the files named name in directories a and b hold the same bytes. */
static int same_file(const char *a, const char *b, const char *name) {
    char a_path[4400], b_path[4400];
    snprintf(a_path, sizeof a_path, "%s/%s", a, name);
    snprintf(b_path, sizeof b_path, "%s/%s", b, name);
    return same_file_bytes(a_path, b_path);
}

/* Writes n floats of data through write(user, ...) in random pieces. */
static int write_in_pieces(int (*write)(void *, const float *, size_t, TnError *), void *user, const float *data,
                           size_t n, TnRng *rng, TnError *err) {
    for (size_t at = 0; at < n;) {
        size_t count = 1 + tn_rng_below(rng, n / 3 + 1);
        if (count > n - at) count = n - at;
        if (write(user, data + at, count, err)) return -1;
        at += count;
    }
    return 0;
}

static int checkpoint_piece(void *w, const float *data, size_t count, TnError *err) {
    return tn_checkpoint_writer_write(w, data, count, err);
}

static int state_piece(void *w, const float *data, size_t count, TnError *err) {
    return tn_train_state_writer_write(w, data, count, err);
}

/* 3: a checkpoint written in pieces is the one written whole, and a
 * range read from it is that range of the whole. */
static void check_checkpoint_io(uint64_t seed, const char *dir) {
    TnConfig cfg = test_config(97, 32, 2, 4, 64, 1u);
    cfg.tie_word_embeddings = 0;
    TnModel model;
    tn_model_init(&model, &cfg, seed);
    size_t n = model.layout.total;
    TnRng rng;
    tn_rng_seed(&rng, seed, 78);
    char whole_dir[4200], pieces_dir[4200], name[64];
    snprintf(whole_dir, sizeof whole_dir, "%s/whole", dir);
    snprintf(pieces_dir, sizeof pieces_dir, "%s/pieces", dir);
    /* bf16 in files of about 4 KiB (several), and float32 in one */
    const struct { TnDtype dtype; size_t shard_bytes; int files; } kinds[] = {{TN_BF16, 4096, 0}, {TN_F32, 0, 1}};
    float *loaded = tn_malloc(n * sizeof *loaded), *part = tn_malloc(n * sizeof *part);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        TnError err;
        TnCheckpointWriter w;
        int rc = tn_checkpoint_save(whole_dir, &cfg, &model.layout, model.params, kinds[k].dtype, kinds[k].shard_bytes,
                                    &err) ||
                 tn_checkpoint_writer_open(&w, pieces_dir, &cfg, &model.layout, kinds[k].dtype, kinds[k].shard_bytes,
                                           &err) ||
                 write_in_pieces(checkpoint_piece, &w, model.params, n, &rng, &err) ||
                 tn_checkpoint_writer_close(&w, &err);
        if (rc) {
            CHECK(0, "%s: %s", tn_dtype_name(kinds[k].dtype), err.msg);
            continue;
        }
        int files = kinds[k].files ? 1 : w.n_shards, same = same_file(whole_dir, pieces_dir, "config.json");
        CHECK(kinds[k].files || files > 2, "%s: %d files, expected several", tn_dtype_name(kinds[k].dtype), files);
        for (int f = 0; f < files; f++) {
            if (files == 1) snprintf(name, sizeof name, "model.safetensors");
            else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", f + 1, files);
            same &= same_file(whole_dir, pieces_dir, name);
        }
        if (files > 1) same &= same_file(whole_dir, pieces_dir, "model.safetensors.index.json");
        CHECK(same, "%s: the checkpoint written in pieces differs from the one written whole",
              tn_dtype_name(kinds[k].dtype));
        TnConfig read_cfg;
        TnParamLayout layout;
        float *params;
        if (tn_checkpoint_load(whole_dir, &read_cfg, &layout, &params, &err)) {
            CHECK(0, "%s", err.msg);
            continue;
        }
        memcpy(loaded, params, n * sizeof *loaded);
        free(params);
        tn_param_layout_free(&layout);
        for (int trial = 0; trial < 10; trial++) {
            TnRange range = random_range(&rng, n, trial);
            CHECK(tn_checkpoint_load_config(pieces_dir, &read_cfg, &err) == 0 && !read_cfg.tie_word_embeddings &&
                      tn_checkpoint_load_range(pieces_dir, &model.layout, part, range.begin, range.end, &err) == 0 &&
                      memcmp(part, loaded + range.begin, (range.end - range.begin) * sizeof *part) == 0,
                  "%s: the range [%zu, %zu) read alone differs from the whole load's",
                  tn_dtype_name(kinds[k].dtype), range.begin, range.end);
        }
        remove_tree(whole_dir);
        remove_tree(pieces_dir);
    }
    free(loaded);
    free(part);
    tn_model_free(&model);
}

/* Flips the bits `mask` of the byte at offset `at` of path (from its end
 * when negative); 0 if it could not. */
static int flip_byte(const char *path, long at, int mask) {
    FILE *fp = fopen(path, "r+b");
    int whence = at < 0 ? SEEK_END : SEEK_SET;
    int byte = fp && fseek(fp, at, whence) == 0 ? fgetc(fp) : EOF;
    int ok = byte != EOF && fseek(fp, at, whence) == 0 && fputc(byte ^ mask, fp) != EOF;
    if (fp) fclose(fp);
    return ok;
}

/* The version 1 layout of a state file of n moments written in blocks of
 * B (the header with version 1 and no block size, the moments, one FNV-1a
 * of every byte before it), made from it at path. */
static int write_version_1(const char *from, const char *path, size_t n, size_t B) {
    char *data;
    size_t size;
    TnError err;
    if (tn_read_file(from, &data, &size, &err)) return 0;
    size_t blocks = (2 * n + B - 1) / B, header = size - 2 * n * sizeof(float) - (blocks + 1) * sizeof(uint64_t);
    uint32_t version = 1, block = 0;
    memcpy(data + 8, &version, 4);
    memcpy(data + 12, &block, 4);
    size_t body = header + 2 * n * sizeof(float);
    uint64_t sum = tn_fnv1a(TN_FNV_OFFSET, data, body);
    memcpy(data + body, &sum, sizeof sum);
    int ok = tn_write_file(path, data, body + sizeof sum, &err) == 0;
    free(data);
    return ok;
}

/* 4: a state file written in pieces is the one written whole; a range of
 * its moments read alone is that range; flipped bytes are found by the
 * reads that need them; version 1 is still read. */
static void check_state_io(uint64_t seed, const char *dir) {
    size_t n = 5000, B = 700; /* 15 blocks of m then v, the last 200 floats */
    TnRng rng;
    tn_rng_seed(&rng, seed, 79);
    float *m = tn_malloc(2 * n * sizeof *m), *v = m + n, *got = tn_malloc(2 * n * sizeof *got);
    for (size_t i = 0; i < 2 * n; i++) m[i] = (float)tn_rng_normal(&rng);
    TnTrainState state = {.step = 7, .tokens_seen = 4096, .elapsed = 1.5, .seq_len = 32, .micro_batch = 2,
                          .accum_steps = 4, .data_hash = tn_rng_next(&rng)}, read;
    char whole[4200], pieces[4200];
    snprintf(whole, sizeof whole, "%s/whole.bin", dir);
    snprintf(pieces, sizeof pieces, "%s/pieces.bin", dir);
    TnError err;
    TnTrainStateWriter w;
    int rc = tn_train_state_save(whole, &state, m, v, n, B, &err) ||
             tn_train_state_writer_open(&w, pieces, &state, n, B, &err) ||
             write_in_pieces(state_piece, &w, m, 2 * n, &rng, &err) || tn_train_state_writer_commit(&w, &err);
    CHECK(!rc, "state file: %s", rc ? err.msg : "");
    CHECK(same_file_bytes(whole, pieces), "the state written in pieces differs from the one written whole");
    for (int trial = 0; trial < 10; trial++) {
        TnRange range = random_range(&rng, n, trial);
        size_t count = range.end - range.begin;
        CHECK(tn_train_state_load_range(pieces, &read, got, got + count, n, range.begin, range.end, &err) == 0 &&
                  read.step == 7 && read.data_hash == state.data_hash &&
                  memcmp(got, m + range.begin, count * sizeof *got) == 0 &&
                  memcmp(got + count, v + range.begin, count * sizeof *got) == 0,
              "state: the moments' range [%zu, %zu) read alone differ", range.begin, range.end);
    }
    /* version 1: the same moments, read whole and by range */
    char old[4200];
    snprintf(old, sizeof old, "%s/version1.bin", dir);
    CHECK(write_version_1(whole, old, n, B), "cannot write %s", old);
    TnRange range = random_range(&rng, n, 1);
    size_t count = range.end - range.begin;
    CHECK(tn_train_state_load_range(old, &read, got, got + count, n, range.begin, range.end, &err) == 0 &&
              read.step == 7 && memcmp(got, m + range.begin, count * sizeof *got) == 0 &&
              memcmp(got + count, v + range.begin, count * sizeof *got) == 0,
          "state: version 1's range [%zu, %zu): %s", range.begin, range.end, err.msg);
    /* one flipped byte in v's last block (floats 9800..10000, before the 16 checksums): m's first float reads
     * (its block is whole), v's last is refused naming the block */
    long tail = (long)(16 * sizeof(uint64_t)), back = -tail - 1 - (long)tn_rng_below(&rng, 200 * sizeof(float));
    CHECK(flip_byte(pieces, back, 0x5a), "cannot corrupt %s", pieces);
    CHECK(tn_train_state_load_range(pieces, &read, got, got + 1, n, 0, 1, &err) == 0 && got[0] == m[0] &&
              got[1] == v[0],
          "a block not read was checked: %s", err.msg);
    CHECK(tn_train_state_load_range(pieces, &read, got, got + 1, n, n - 1, n, &err) != 0 &&
              strstr(err.msg, "block 15 of 15"),
          "a corrupted block was read: %s", err.msg);
    CHECK(flip_byte(pieces, back, 0x5a), "cannot mend %s", pieces);
    /* the header (its step) and a block's checksum: every read refuses */
    const long places[2] = {16, -tail + (long)tn_rng_below(&rng, 15 * sizeof(uint64_t))};
    for (int i = 0; i < 2; i++) {
        CHECK(flip_byte(pieces, places[i], 0x01), "cannot corrupt %s", pieces);
        CHECK(tn_train_state_load_range(pieces, &read, got, got + 1, n, 0, 1, &err) != 0 &&
                  strstr(err.msg, "header or the block checksums"),
              "a corrupted %s was read: %s", i ? "block checksum" : "header", err.msg);
        CHECK(flip_byte(pieces, places[i], 0x01), "cannot mend %s", pieces);
    }
    CHECK(tn_train_state_load_range(pieces, &read, got, got + count, n, range.begin, range.end, &err) == 0,
          "the mended file: %s", err.msg);
    /* a version 1 file's one checksum covers every byte: a flip outside the range read is refused */
    CHECK(flip_byte(old, -9, 0x10), "cannot corrupt %s", old);
    CHECK(tn_train_state_load_range(old, &read, got, got + 1, n, 0, 1, &err) != 0 && strstr(err.msg, "checksum"),
          "a corrupted version 1 file was read");
    free(m);
    free(got);
}

/* 5: a rank's range of its tensor-parallel part, as runs of the whole
 * buffer (tn_tp_runs), drawn, read from a checkpoint and from a state file,
 * equals that range of the part sliced from the whole (tn_tp_slice). */
static void check_part_runs(const TnConfig *cfg, uint64_t seed, const char *dir) {
    TnParamLayout whole, part;
    tn_param_layout_init(&whole, cfg);
    size_t n = whole.total;
    float *all = tn_malloc(2 * n * sizeof *all), *negated = all + n;
    float *sliced = tn_malloc(n * sizeof *sliced), *got = tn_malloc(2 * n * sizeof *got);
    tn_params_init(all, &whole, cfg, seed);
    for (size_t i = 0; i < n; i++) negated[i] = -all[i];
    char model_dir[4200], state_path[4200];
    snprintf(model_dir, sizeof model_dir, "%s/runs_model", dir);
    snprintf(state_path, sizeof state_path, "%s/runs_state.bin", dir);
    TnTrainState state = {.step = 3};
    TnCheckpointReader *reader = NULL;
    TnError err;
    if (tn_checkpoint_save(model_dir, cfg, &whole, all, TN_F32, 0, &err) ||
        tn_train_state_save(state_path, &state, all, negated, n, 1000, &err) ||
        tn_checkpoint_reader_open(&reader, model_dir, &whole, &err)) {
        CHECK(0, "%s", err.msg);
    }
    TnRng rng;
    tn_rng_seed(&rng, seed, 80);
    for (int parts = 2; parts <= 4 && reader; parts *= 2) {
        tn_tp_layout(&part, &whole, cfg, parts);
        for (int trial = 0; trial < 8; trial++) {
            int index = (int)tn_rng_below(&rng, (uint64_t)parts);
            TnRange range = random_range(&rng, part.total, trial);
            size_t count = range.end - range.begin;
            tn_tp_slice(sliced, &part, all, &whole, cfg, parts, index);
            TnRun *runs;
            size_t n_runs = tn_tp_runs(&part, &whole, cfg, parts, index, range.begin, range.end, &runs);
            tn_params_init_runs(got, &whole, cfg, seed, runs, n_runs);
            CHECK(memcmp(got, sliced + range.begin, count * sizeof *got) == 0,
                  "part %d of %d, [%zu, %zu): drawn by runs, not the slice of the whole", index, parts, range.begin,
                  range.end);
            memset(got, 0, count * sizeof *got);
            CHECK(tn_checkpoint_read_runs(reader, runs, n_runs, got, &err) == 0 &&
                      memcmp(got, sliced + range.begin, count * sizeof *got) == 0,
                  "part %d of %d, [%zu, %zu): read by runs, not the slice of the whole", index, parts, range.begin,
                  range.end);
            TnTrainState read;
            int rc = tn_train_state_load_runs(state_path, &read, got, got + count, n, runs, n_runs, &err);
            int same = rc == 0 && memcmp(got, sliced + range.begin, count * sizeof *got) == 0;
            for (size_t i = 0; same && i < count; i++) same = got[count + i] == -sliced[range.begin + i];
            CHECK(same, "part %d of %d, [%zu, %zu): moments read by runs, not the slice of the whole", index, parts,
                  range.begin, range.end);
            free(runs);
        }
        tn_param_layout_free(&part);
    }
    tn_checkpoint_reader_close(reader);
    free(all);
    free(sliced);
    free(got);
    tn_param_layout_free(&whole);
}

/* 2, one rank: the trainer's buffers against the plan. */
static void check_rank(const TnComm *comm, const char *dir) {
    TnConfig cfg;
    TnError err;
    if (tn_config_from_size(&cfg, "tiny", &err)) tn_die("%s", err.msg);
    TnPlanCounts counts;
    tn_plan_counts(&cfg, &counts);
    char data[4200], out[4200];
    snprintf(data, sizeof data, "%s/corpus.txt", dir);
    for (int zero = 0; zero <= 3; zero++) {
        TnTrainOptions o;
        tn_train_options_defaults(&o);
        snprintf(out, sizeof out, "%s/np%d_zero%d", dir, comm->size, zero);
        o.config = cfg;
        o.data = data;
        o.seq_len = 32;
        o.micro_batch = 2;
        o.batch_tokens = 256;
        o.steps = 1;
        o.eval_every = 0;
        o.quiet = 1;
        o.out_dir = out;
        o.comm = comm;
        o.zero = zero;
        TnTrainResult result;
        if (tn_train_run(&o, &result, &err) != TN_TRAIN_DONE) {
            CHECK(0, "rank %d, ZeRO-%d: %s", comm->rank, zero, err.msg);
            continue;
        }
        TnPlanElements plan = tn_plan_elements(&counts, 1, comm->size, zero);
        const TnTrainMemory *mem = &result.memory;
        struct { const char *what; double real, planned, slack; } kinds[] = {
            {"parameters", (double)mem->parameters, 4 * plan.parameters, 4},
            {"gather buffer", (double)mem->gather, 4 * plan.gather, 0},
            {"gradients", (double)mem->gradients, 4 * plan.gradients, 4},
            {"gradient buffers", (double)mem->grad_buffers, 4 * plan.grad_buffers, 0},
            {"moments", (double)mem->moments, 4 * plan.moments, 8},
        };
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            CHECK(fabs(kinds[k].real - kinds[k].planned) <= kinds[k].slack,
                  "rank %d of %d, ZeRO-%d: %s %.0f bytes, the plan %.0f", comm->rank, comm->size, zero,
                  kinds[k].what, kinds[k].real, kinds[k].planned);
        CHECK(mem->total > mem->parameters + mem->gradients + mem->moments, "rank %d, ZeRO-%d: total %zu",
              comm->rank, zero, mem->total);
    }
}

/* Runs this binary under mpirun -np ranks and checks that every rank passed. */
static void launch(const char *self, int ranks, const char *dir) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 TN_ZERO_RANK_DIR=%s " MPIRUN " -np %d %s", dir, ranks, self);
    check_ranks_passed(cmd, ranks, "zero");
}

int main(int argc, char **argv) {
    (void)argc;
    const char *rank_dir = getenv("TN_ZERO_RANK_DIR");
    if (rank_dir) { /* one rank of launch() */
        TnComm comm;
        TnError err;
        if (tn_comm_init(&comm, &err)) tn_die("%s", err.msg);
        check_rank(&comm, rank_dir);
        print_rank_counts("zero", comm.rank);
        tn_comm_finalize(&comm);
        return tn_tests_failed != 0;
    }
    uint64_t seed = test_seed();
    TnConfig tied = test_config(97, 32, 2, 4, 64, 1u), untied = tied;
    untied.tie_word_embeddings = 0;
    tied.pad_token_id = 5;
    check_init_ranges(&tied, seed);
    check_init_ranges(&untied, seed);
    /* an embedding of 2.56 M elements: three blocks of draws (params.c), the padding row in the second */
    TnConfig large = test_config(40000, 64, 1, 4, 128, 1u);
    large.pad_token_id = 20000;
    check_init_ranges(&large, seed);
    check_init_blocks(&large, seed);

    char dir[4096], corpus[4200];
    make_temp_dir(dir, sizeof dir, "zero");
    check_checkpoint_io(seed, dir);
    check_state_io(seed, dir);
    check_part_runs(&tied, seed, dir);
    check_part_runs(&large, seed, dir); /* runs across the blocks of draws */
    check_mpi_available();
    if (tn_tests_failed) {
        remove_tree(dir);
        return TEST_DONE(argv[0]);
    }
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    write_word_corpus(corpus, seed);
    launch(argv[0], 2, dir);
    launch(argv[0], 3, dir);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
