/* test.h: the minimal harness every test binary uses.
 *
 * CHECK(cond, fmt, ...) counts a pass or prints the failure with file:line.
 * TEST_DONE() prints "<binary>: N passed, M failed" and returns the exit
 * status main() should return (non-zero on any failure). tests/run.sh sums
 * the lines of all binaries.
 */
#ifndef TN_TESTS_TEST_H
#define TN_TESTS_TEST_H

#include <stdint.h>
#include <stdio.h>

#include "model/params.h"
#include "model/transnormer.h"

extern int tn_tests_passed, tn_tests_failed;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            tn_tests_passed++;                                                \
        } else {                                                              \
            tn_tests_failed++;                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

#define TEST_DONE(argv0)                                                           \
    (printf("%s: %d passed, %d failed\n", (argv0), tn_tests_passed, tn_tests_failed), \
     tn_tests_failed != 0)

/* For the programs that print every comparison (tests/cuda/): counts a pass
 * or a failure like CHECK and prints "ok  " or "FAIL", what, the value and
 * the tolerance. */
void check_value(int ok, const char *what, double value, double tolerance);

/* Relative l2 error ||a - b|| / ||b|| of float32 results against a float64 reference. */
double rel_l2_f32_f64(const float *a, const double *ref, size_t n);
double rel_l2_f32_f32(const float *a, const float *ref, size_t n);
/* The seed of a test's random inputs: $TN_TEST_SEED when set, else a fresh
 * one; printed so that a failure can be replayed. */
uint64_t test_seed(void);
/* test_seed() below 2^61, for a test that passes it to tnllm's --seed (at
 * most 2^62): a few seeds after it are in range too. */
unsigned long long test_cli_seed(void);
/* A configuration of the given sizes with SPEC section 1's defaults (tied
 * embedding, scaled, init_std 0.02, pad/bos/eos 0/1/2); bit l of lrpe_mask
 * puts LRPE on layer l. */
TnConfig test_config(int vocab, int dim, int layers, int heads, int glu, unsigned lrpe_mask);
/* Applies space-separated SPEC section 3 switches "key=value ..." (keys of
 * tn_config_set_switch) to cfg; dies on a bad one. NULL or "" = none. */
void apply_switches(TnConfig *cfg, const char *switches);
/* Gives every norm gain a random value in [0.5, 1.5) and every bias one in
 * [-0.5, 0.5), so that a gain or bias mixed up with 1 or 0 shows. */
void randomize_norm_params(float *params, const TnParamLayout *layout, uint64_t seed);
/* Applies the switches to *cfg, CHECKs that the result validates and
 * initialises m from it with seed. */
void switched_model_init(TnModel *m, TnConfig *cfg, const char *switches, uint64_t seed);

/* The golden directory (tests/golden/tiny, or $TN_GOLDEN_DIR). */
const char *golden_dir(void);
/* A fresh empty directory under $TMPDIR for this test; removed by the caller
 * with remove_tree(). */
void make_temp_dir(char *out, size_t cap, const char *tag);
void remove_tree(const char *path);
/* Whether the files at a and b hold the same bytes (0 when either cannot
 * be read). */
int same_file_bytes(const char *a, const char *b);
/* Runs a shell command with its stdout and stderr captured into out
 * (NUL-terminated, cut at cap - 1 bytes); returns its exit status, or -1
 * when it did not exit normally. */
int run_command(const char *cmd, char *out, size_t cap);
/* The multi-rank tests' precondition, checked (CHECK) with a message that
 * says what to install: this build has MPI (mpicc was found, -DTN_MPI) and
 * mpirun is on the PATH. Returns 1 when both hold. */
int check_mpi_available(void);
/* run_command of a printf-formatted command. */
int run_commandf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The two ends of a test binary that launches itself under mpirun: each
 * rank ends by printing its counts as "<tag> rank R: P passed, F failed"
 * (print_rank_counts); check_ranks_passed runs cmd (the mpirun launch of
 * `ranks` such ranks) and CHECKs that it exits 0 and that every rank
 * reported some passes and no failure, printing the output otherwise. */
void print_rank_counts(const char *tag, int rank);
void check_ranks_passed(const char *cmd, int ranks, const char *tag);
/* The tnllm binary to run: $TNLLM when set (make sets it: the sanitizer
 * build runs its own), else ./tnllm. */
const char *tnllm_binary(void);

#endif
