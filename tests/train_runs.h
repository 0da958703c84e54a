/* train_runs.h: `tnllm train` runs for the distributed-training tests
 * (test_dist, test_tensor_parallel): one process or under mpirun, and
 * their per-step losses and final weights against a reference run's.
 *
 * The ranks run with LeakSanitizer off (ASAN_OPTIONS=detect_leaks=0, a
 * no-op outside the sanitizer build): OpenMPI's own allocations outlive
 * MPI_Finalize. The single-process runs keep it on. OpenMPI's
 * shared-memory transport copies through its own buffers
 * (btl_vader_single_copy_mechanism=none): containers often forbid the
 * cross-process reads of its default. --oversubscribe: more ranks than
 * this machine's cores.
 */
#ifndef TN_TESTS_TRAIN_RUNS_H
#define TN_TESTS_TRAIN_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "model/transnormer.h"

#define MPIRUN                                                                         \
    "ASAN_OPTIONS=detect_leaks=0 OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun " \
    "--oversubscribe --allow-run-as-root"

/* Random text at path: words of a 12-letter alphabet, so that a model
 * learns something in a few steps. */
void write_word_corpus(const char *path, uint64_t seed);

/* Runs `OMP_NUM_THREADS=1 [mpirun -np ranks] tnllm train <options> -o
 * dir/name` (ranks 0: one process, without mpirun) into output (stdout and
 * stderr). Returns the exit status; prints the command and its output when
 * it is not 0. */
int train_run(const char *dir, int ranks, const char *name, const char *options, char *output, size_t cap);

/* The loss of each step 1..steps of dir/name/metrics.jsonl into
 * losses[1..steps] (NAN where absent; losses has steps + 1 entries). */
void read_step_losses(const char *dir, const char *name, double *losses, int steps);

/* The largest difference between the final weights of run dir/name and
 * of the reference, relative to the reference's largest weight (INFINITY
 * when the run's model cannot be read or has another size). */
double weight_difference(const TnModel *reference, const char *dir, const char *name);

/* CHECKs that run dir/name gave the reference's losses (steps 1..steps)
 * within loss_tolerance (relative) and its final weights (dir/name/model)
 * within weight_tolerance of the reference's largest weight; prints both
 * differences. */
void compare_with_reference(const TnModel *reference, const double *reference_losses, int steps, const char *dir,
                            const char *name, double loss_tolerance, double weight_tolerance);

#endif
