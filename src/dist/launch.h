/* launch.h: joining a job started without MPI (torchrun, Slurm's srun):
 * the rank from the environment, and the NCCL unique id passed from rank 0
 * to the others through a file or a TCP socket.
 *
 * Environment, first match wins (every variable a decimal integer):
 *   torchrun:  RANK, WORLD_SIZE, LOCAL_RANK (LOCAL_RANK optional: 0)
 *   Slurm:     SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID (optional: 0)
 * requiring 0 <= rank < size and 0 <= local rank.
 *
 * The id (opaque bytes; NCCL's ncclUniqueId is 128) goes through `init`:
 *   file:PATH       rank 0 writes PATH atomically (a temporary file beside
 *                   it, renamed: util/fileio.h) and refuses a PATH that
 *                   exists (a stale id would let ranks of two jobs meet:
 *                   use a fresh path per job); the others poll until it
 *                   appears. Rank 0 removes it once every rank has joined
 *                   (tn_launch_cleanup). PATH must be on a file system all
 *                   ranks see.
 *   tcp://HOST:PORT rank 0 listens on PORT (every interface) and sends the
 *                   id to size - 1 connections; the others connect to
 *                   HOST:PORT (rank 0's address), retrying until it listens.
 * The file and the stream carry a magic word and the id's length, so a
 * wrong file or peer is refused with a message, not misread.
 */
#ifndef TN_DIST_LAUNCH_H
#define TN_DIST_LAUNCH_H

#include <stddef.h>

#include "util/error.h"

/* Seconds a rank waits for the id before failing (tn_launch_share_id). */
#define TN_LAUNCH_TIMEOUT 300.0

typedef struct TnLaunch {
    int rank, size, local_rank;
    const char *source; /* "torchrun" or "Slurm": whose variables */
} TnLaunch;

/* 1 with *launch filled when the variables of a launcher are set, 0 when
 * none is, -1 (err names the variable and its value) when they are
 * malformed or inconsistent. */
int tn_launch_from_env(TnLaunch *launch, TnError *err);

/* Shares `bytes` bytes at id from rank 0 to every rank of size through
 * init (see above): rank 0's id is sent, the others' is overwritten.
 * Rank 0 returns once size - 1 ranks have it (tcp) or the file is in
 * place (file). Fails after timeout_s seconds without a peer or file, on a
 * malformed init or a mismatched file or stream, naming them. */
int tn_launch_share_id(const char *init, int rank, int size, void *id, size_t bytes, double timeout_s,
                       TnError *err);
/* After every rank has joined the group: rank 0 removes a file: init's
 * file; anything else does nothing. */
void tn_launch_cleanup(const char *init, int rank);

#endif
